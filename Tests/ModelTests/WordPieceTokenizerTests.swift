// Tests for WordPieceTokenizer: a hand-checked tiny vocabulary, and the real MiniLM vocab.txt
// against ids from the Hugging Face `tokenizers` package (Tests/Fixtures/tokenizer/make_fixture.py).

import Foundation
import XCTest
@testable import Model

final class WordPieceTokenizerTests: XCTestCase {
    // ids:                 0        1        2        3        4     5        6         7        8    9
    static let tinyVocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "hello", "!", ",",
    //                      10     11   12      13   14    15    16     17   18
                            "##s", "a", "cafe", "北", "ab", "##c", "##bc", "##a", "x"]

    func tiny() throws -> WordPieceTokenizer { try WordPieceTokenizer(tokens: Self.tinyVocab) }

    func testTinyVocabularySplitsWordsIntoLongestPieces() throws {
        let tokenizer = try tiny()
        XCTAssertEqual(tokenizer.tokenize("Unaffable!"), ["un", "##aff", "##able", "!"])
        XCTAssertEqual(tokenizer.tokenize("Hellos, CAFÉ"), ["hello", "##s", ",", "cafe"])
        // Greedy longest match first: "ab" + "##c", not "a" + "##bc".
        XCTAssertEqual(tokenizer.tokenize("abc"), ["ab", "##c"])
        XCTAssertEqual(tokenizer.tokenize("a北x"), ["a", "北", "x"])
    }

    func testWordWithUnmatchablePartBecomesOneUnknown() throws {
        let tokenizer = try tiny()
        // "ab" matches but nothing matches "##q": the whole word is [UNK], not "ab" + [UNK].
        XCTAssertEqual(tokenizer.tokenize("abq hello"), ["[UNK]", "hello"])
        XCTAssertEqual(tokenizer.tokenize("zzz"), ["[UNK]"])
    }

    func testWordsLongerThanOneHundredScalarsAreUnknown() throws {
        let tokenizer = try tiny()
        // "a" then 99 × "##a": exactly 100 scalars is still split.
        XCTAssertEqual(tokenizer.tokenize(String(repeating: "a", count: 100)), ["a"] + Array(repeating: "##a", count: 99))
        XCTAssertEqual(tokenizer.tokenize(String(repeating: "a", count: 101)), ["[UNK]"])
    }

    func testEncodeAddsClsSepAndTruncatesToMaxLength() throws {
        let tokenizer = try tiny()
        XCTAssertEqual(tokenizer.encode("unaffable hello", maxLength: 16), [2, 4, 5, 6, 7, 3])
        XCTAssertEqual(tokenizer.encode("unaffable hello", maxLength: 4), [2, 4, 5, 3])
        XCTAssertEqual(tokenizer.encode("unaffable hello", maxLength: 2), [2, 3])
        XCTAssertEqual(tokenizer.encode("", maxLength: 8), [2, 3])
    }

    func testBatchPadsToLongestRowWithMaskAndLengths() throws {
        let tokenizer = try tiny()
        let batch = tokenizer.batch(["hello", "unaffable hello !", ""], maxLength: 5)
        XCTAssertEqual(batch.batchSize, 3)
        XCTAssertEqual(batch.sequenceLength, 5)  // row 2 has 7 tokens, truncated to 5
        XCTAssertEqual(batch.inputIDs, [2, 7, 3, 0, 0,
                                        2, 4, 5, 6, 3,
                                        2, 3, 0, 0, 0])
        XCTAssertEqual(batch.attentionMask, [1, 1, 1, 0, 0,
                                             1, 1, 1, 1, 1,
                                             1, 1, 0, 0, 0])
        XCTAssertEqual(batch.tokenTypeIDs, [Int32](repeating: 0, count: 15))
        XCTAssertEqual(batch.lengths, [3, 5, 2])
        // Padded only to the longest row, not to maxLength.
        XCTAssertEqual(tokenizer.batch(["hello"], maxLength: 64).sequenceLength, 3)
    }

    func testSpecialIDsAndTokenLookup() throws {
        let tokenizer = try tiny()
        XCTAssertEqual([tokenizer.padID, tokenizer.unkID, tokenizer.clsID, tokenizer.sepID], [0, 1, 2, 3])
        XCTAssertEqual(tokenizer.vocabularySize, Self.tinyVocab.count)
        XCTAssertEqual(tokenizer.token(for: 5), "##aff")
        XCTAssertEqual(tokenizer.token(for: 999), "[UNK]")
    }

    func testVocabularyFileWithCRLFLinesLoads() throws {
        let path = try FixturePaths.temporaryFile(named: "vocab.txt", contents: Self.tinyVocab.joined(separator: "\r\n") + "\r\n")
        let tokenizer = try WordPieceTokenizer(vocabularyFile: path)
        XCTAssertEqual(tokenizer.vocabularySize, Self.tinyVocab.count)
        XCTAssertEqual(tokenizer.tokenize("unaffable"), ["un", "##aff", "##able"])
    }

    func testMissingVocabularyFileErrorNamesTheFile() {
        XCTAssertThrowsError(try WordPieceTokenizer(vocabularyFile: "/nonexistent/vocab.txt")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/vocab.txt"), "\(error)")
        }
    }

    func testVocabularyWithoutSpecialTokenIsRejectedByName() throws {
        let path = try FixturePaths.temporaryFile(named: "vocab.txt", contents: "[PAD]\n[UNK]\n[CLS]\nhello\n")
        XCTAssertThrowsError(try WordPieceTokenizer(vocabularyFile: path)) { error in
            XCTAssertEqual(error as? TokenizerError, .missingSpecialToken(file: path, token: "[SEP]"))
        }
    }

    // MARK: real vocabulary against the `tokenizers` reference

    struct Fixture: Decodable {
        struct Case: Decodable { let text: String; let tokens: [String]; let ids: [Int32] }
        let cases: [Case]
    }

    func testRealVocabularyMatchesHuggingFaceTokenizers() throws {
        let vocab = try FixturePaths.asset("models/minilm-l6/vocab.txt")
        let tokenizer = try WordPieceTokenizer(vocabularyFile: vocab)
        XCTAssertEqual(tokenizer.vocabularySize, 30522)
        let data = try Data(contentsOf: URL(fileURLWithPath: FixturePaths.fixture("tokenizer", "wordpiece.json")))
        let fixture = try JSONDecoder().decode(Fixture.self, from: data)
        XCTAssertGreaterThanOrEqual(fixture.cases.count, 25)
        for item in fixture.cases {
            XCTAssertEqual(tokenizer.tokenize(item.text), item.tokens, "tokens of \(item.text.debugDescription)")
            XCTAssertEqual(tokenizer.encode(item.text, maxLength: 512), item.ids, "ids of \(item.text.debugDescription)")
            // Truncation keeps [CLS], the first pieces and [SEP].
            let cut = tokenizer.encode(item.text, maxLength: 6)
            XCTAssertEqual(cut, Array(item.ids.prefix(min(5, item.ids.count - 1))) + [tokenizer.sepID])
        }
    }
}
