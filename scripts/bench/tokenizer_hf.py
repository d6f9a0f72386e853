#!/usr/bin/env python3
"""Reference for `fedmerge bench tokenizer`: Hugging Face `tokenizers` (Rust) on the same texts.

Builds the BERT uncased WordPiece pipeline from vocab.txt (as Tests/Fixtures/tokenizer/
make_fixture.py does), encodes the texts of a JSON list file with encode_batch on one
thread (RAYON_NUM_THREADS=1 from the caller), writes the ids to --ids-out for the
agreement check, and prints one JSON object: best seconds and the number of wordpieces.
Needs `pip install tokenizers` (for this script only).
"""
import argparse
import json
import time

from tokenizers import Tokenizer
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--texts", required=True, help="JSON file holding a list of strings")
    ap.add_argument("--ids-out", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    tok = Tokenizer(WordPiece.from_file(args.vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
    tok.pre_tokenizer = BertPreTokenizer()
    with open(args.texts, encoding="utf-8") as f:
        texts = json.load(f)

    encodings = tok.encode_batch(texts)  # warm-up
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        encodings = tok.encode_batch(texts)
        best = min(best, time.perf_counter() - start)
    with open(args.ids_out, "w") as f:
        json.dump([e.ids for e in encodings], f)
    print(json.dumps({"seconds": best, "pieces": sum(len(e.ids) for e in encodings)}))


if __name__ == "__main__":
    main()
