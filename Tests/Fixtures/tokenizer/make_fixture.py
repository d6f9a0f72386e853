#!/usr/bin/env python3
"""Writes wordpiece.json: reference wordpieces and ids for WordPieceTokenizerTests.

The reference is the Hugging Face `tokenizers` package (Rust), independent of our Swift
code: a WordPiece model read from the fetched MiniLM vocab.txt, the BERT normalizer
(clean_text, handle_chinese_chars, strip_accents, lowercase) and the BERT pre-tokenizer,
with [CLS] … [SEP] added by BertProcessing. No special tokens are registered as "added
tokens", so "[SEP]" typed in text is ordinary text (split as punctuation + word).

Usage (from the repository root, after scripts/fetch-assets.sh):
    pip install tokenizers          # for this script only
    python3 Tests/Fixtures/tokenizer/make_fixture.py
"""
import json
import os
import sys

from tokenizers import Tokenizer
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer
from tokenizers.processors import BertProcessing
import tokenizers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
VOCAB = os.path.join(ROOT, ".cache", "models", "minilm-l6", "vocab.txt")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wordpiece.json")

SENTENCES = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "",
    "   \t\n  ",
    "Café crème brûlée, naïve façade — résumé.",
    "ÀÉÎÕÜ àéîõü Ñandú",
    "北京欢迎你",
    "我爱自然语言处理 and machine translation",
    "日本語のテキスト、カタカナ。",
    "한국어 문장입니다",
    "I love pizza 🍕🍕 and emoji 😀!",
    "What?!?! No way...!!!",
    "Visit https://example.com/path?query=1&b=2#frag now",
    "email me at first.last+tag@example.org",
    "Numbers: 3.14159, 1,000,000 and 42nd, 1e-8, -7",
    "$100 + 20% = ^caret~tilde `backtick` |pipe| {braces} <angle>",
    "pneumonoultramicroscopicsilicovolcanoconiosis is a long word",
    "a" * 101 + " followed by text",
    "b" * 100 + " exactly one hundred",
    "control\x00chars\x07here\x1b[0m and\u200bzero\u00adwidth",
    "MiXeD CaSe TeXt WITH SHOUTING",
    "Tabs\tand\nnewlines\r\nand\u00a0nbsp\u3000ideographic space",
    "unaffable unbelievably tokenization",
    "[CLS] typed [SEP] and [UNK] [PAD] tokens",
    "Don't can't won't it's y'all",
    "Ελληνικά ΣΟΦΙΑ σοφία, Русский текст",
    "İstanbul ß straße ǅemal ﬁnance",
    "\u201cquoted\u201d \u2018single\u2019 \u00abguillemets\u00bb \u2026 ellipsis \u2014 dash",
    "x\ufffdy\ufffdz replacement chars",
    "unassigned a\u0378b and private use c\ue000d code points",
    "The Rock is destined to be the 21st Century's new ''Conan''.",
    "zxqvjkw qqqq ##hash ##",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6 7 8 9",
]


def main():
    if not os.path.exists(VOCAB):
        sys.exit(f"missing {VOCAB}: run scripts/fetch-assets.sh first")
    tok = Tokenizer(WordPiece.from_file(VOCAB, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                    strip_accents=True, lowercase=True)
    tok.pre_tokenizer = BertPreTokenizer()
    tok.post_processor = BertProcessing(("[SEP]", tok.token_to_id("[SEP]")),
                                        ("[CLS]", tok.token_to_id("[CLS]")))
    cases = []
    for text in SENTENCES:
        enc = tok.encode(text)
        cases.append({"text": text, "tokens": enc.tokens[1:-1], "ids": enc.ids})
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump({"generator": f"tokenizers {tokenizers.__version__}", "vocab": "minilm-l6/vocab.txt",
                   "cases": cases}, f, ensure_ascii=True, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
