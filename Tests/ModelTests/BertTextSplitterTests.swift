// Tests for BertTextSplitter: BERT clean-up, normalisation and word splitting, cases checked by hand.

import XCTest
@testable import Model

final class BertTextSplitterTests: XCTestCase {
    func words(_ text: String, lowercase: Bool = true) -> [String] {
        BertTextSplitter.words(in: text, lowercase: lowercase).map { String(String.UnicodeScalarView($0)) }
    }

    func testAccentsAreStrippedAndCaseLowered() {
        XCTAssertEqual(words("Café NAÏVE Ångström"), ["cafe", "naive", "angstrom"])
        XCTAssertEqual(words("Café", lowercase: false), ["Café"])
    }

    func testPunctuationIsSplitOffOneCharacterAtATime() {
        XCTAssertEqual(words("wait...what?!"), ["wait", ".", ".", ".", "what", "?", "!"])
        // ASCII symbols that Unicode calls Sm/Sc/Sk count as punctuation too.
        XCTAssertEqual(words("a$b+c^d"), ["a", "$", "b", "+", "c", "^", "d"])
        // Non-ASCII symbols (So) do not: the euro sign stays attached.
        XCTAssertEqual(words("5€"), ["5€"])
    }

    func testCJKIdeographsBecomeSingleWordsButKanaDoesNot() {
        XCTAssertEqual(words("ab北京cd"), ["ab", "北", "京", "cd"])
        XCTAssertEqual(words("カタカナ"), ["カタカナ"])
    }

    func testControlCharactersAreDroppedAndWhitespaceSplits() {
        XCTAssertEqual(words("a\u{0}b\u{7}c\u{200B}d"), ["abcd"])
        XCTAssertEqual(words(" x\t\ny\r\nz\u{00A0}w\u{3000}v "), ["x", "y", "z", "w", "v"])
        XCTAssertEqual(words(""), [])
        // Private use (Co) is dropped; unassigned (Cn, U+0378) stays, as in the reference.
        XCTAssertEqual(words("a\u{E000}b a\u{378}b"), ["ab", "a\u{378}b"])
    }
}
