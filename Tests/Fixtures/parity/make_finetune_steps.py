#!/usr/bin/env python3
"""Fine-tuning parity fixture: the first steps of transformers' recipe on MiniLM-L6, run in
PyTorch, so FedMerge's Trainer can be checked step for step (Tests/ModelTests/FinetuneParityTests).

Recipe (transformers Trainer defaults for sequence classification): BertForSequenceClassification
(CLS → pooler → classifier), cross-entropy (mean over the batch), torch.optim.AdamW
(β 0.9/0.999, ε 1e-8) with weight decay 0.01 on every tensor except biases and LayerNorm
weights, get_linear_schedule_with_warmup, gradient clipping to global norm 1.0. Dropout is off
(model.eval()) so both sides compute the same function; the classifier head starts from the
seeded values stored here, batches are the token ids stored here.

Needs torch + transformers (a venv of your own; never a dependency of FedMerge):
  /path/to/venv/bin/python Tests/Fixtures/parity/make_finetune_steps.py \
      --model .cache/models/minilm-l6 --texts .cache/demo/data/movies/train.csv
Writes finetune_steps.json next to this script.
"""
import argparse
import csv
import json
import os

import numpy as np
import torch
from transformers import AutoTokenizer, BertForSequenceClassification, get_linear_schedule_with_warmup

BATCH, BATCHES, EPOCHS, MAX_LEN = 8, 3, 2, 32
LR, WARMUP, WEIGHT_DECAY, CLIP = 1e-4, 2, 0.01, 1.0
PROBES = ["classifier.bias", "bert.pooler.dense.bias", "bert.encoder.layer.5.output.LayerNorm.weight"]

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--texts", required=True, help="CSV with text,label columns (label negative/positive)")
args = ap.parse_args()

torch.manual_seed(0)
torch.set_num_threads(2)
rows = list(csv.DictReader(open(args.texts, encoding="utf-8")))[: BATCH * BATCHES]
texts = [r["text"] for r in rows]
labels = [1 if r["label"] == "positive" else 0 for r in rows]
tok = AutoTokenizer.from_pretrained(args.model)
batches = []
for b in range(BATCHES):
    enc = tok(texts[b * BATCH:(b + 1) * BATCH], truncation=True, max_length=MAX_LEN)
    batches.append({"ids": enc["input_ids"], "labels": labels[b * BATCH:(b + 1) * BATCH]})

model = BertForSequenceClassification.from_pretrained(args.model, num_labels=2)
rng = np.random.default_rng(7)
head = rng.normal(0, 0.02, size=(2, model.config.hidden_size)).astype(np.float32)
with torch.no_grad():
    model.classifier.weight.copy_(torch.from_numpy(head))
    model.classifier.bias.zero_()
model.eval()  # dropout off; gradients still flow

decay = [p for n, p in model.named_parameters() if not (n.endswith(".bias") or "LayerNorm" in n)]
no_decay = [p for n, p in model.named_parameters() if n.endswith(".bias") or "LayerNorm" in n]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
                        lr=LR, betas=(0.9, 0.999), eps=1e-8)
total = BATCHES * EPOCHS
sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=WARMUP, num_training_steps=total)
steps = []
for epoch in range(EPOCHS):
    for b in batches:
        width = max(len(s) for s in b["ids"])
        ids = torch.tensor([s + [0] * (width - len(s)) for s in b["ids"]])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in b["ids"]])
        opt.zero_grad()
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids),
                    labels=torch.tensor(b["labels"]))
        out.loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        lr = sched.get_last_lr()[0]
        opt.step()
        sched.step()
        steps.append({"loss": out.loss.item(), "grad_norm": norm.item(), "lr": lr})
params = dict(model.named_parameters())
fixture = {
    "recipe": {"batch": BATCH, "epochs": EPOCHS, "lr": LR, "warmup_steps": WARMUP, "weight_decay": WEIGHT_DECAY,
               "max_grad_norm": CLIP, "dropout": 0.0},
    "head": {"weight": [float(x) for x in head.ravel()], "bias": [0.0, 0.0]},
    "batches": batches,
    "steps": steps,
    "final": {n: [float(x) for x in params[n].detach().numpy().ravel()[:16]] for n in PROBES},
    "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "finetune_steps.json")
with open(path, "w") as f:
    json.dump(fixture, f, separators=(",", ":"))
print("wrote", path, [round(s["loss"], 6) for s in steps])
