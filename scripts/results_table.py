#!/usr/bin/env python3
"""Markdown rows for docs/results.md from the final.json of each run under a folder.

Usage: scripts/results_table.py runs/fmnist [name ...]   (standard library only)
"""
import json, pathlib, sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "runs/fmnist")
names = sys.argv[2:] or sorted(p.parent.name for p in root.glob("*/final.json"))
pct = lambda v: "-" if v is None else f"{v:.2f}"
print("| run | overall | many | medium | few | head / mid / tail third | ECE % | TIE | F_H | rarest classes (train images: acc %) | minutes |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for name in names:
    f = root / name / "final.json"
    if not f.exists():
        print(f"| {name} | (not run) |")
        continue
    r = json.loads(f.read_text())
    # a later `longtail eval --run` of the final checkpoint (eval-final.json) supersedes the
    # metrics written at the end of training; the training time stays final.json's
    again = root / name / "eval-final.json"
    m = json.loads(again.read_text())["metrics"] if again.exists() else r["metrics"]
    s, t, h = m["shots"]["accuracy"], m["thirds"]["accuracy"], m.get("hierarchical")
    rare = ", ".join(f"{c['name']} ({c['train_count']}): {c['accuracy']:.1f}" for c in m["rarest"])
    print(f"| {name} | {m['accuracy']:.2f} | {pct(s[0])} | {pct(s[1])} | {pct(s[2])} | "
          f"{' / '.join(pct(v) for v in t)} | {m['ece']:.2f} | {h['tie']:.4f} | {h['f_h']:.2f} | {rare} | "
          f"{r['total_seconds'] / 60:.0f} |" if h else
          f"| {name} | {m['accuracy']:.2f} | {pct(s[0])} | {pct(s[1])} | {pct(s[2])} | "
          f"{' / '.join(pct(v) for v in t)} | {m['ece']:.2f} | - | - | {rare} | {r['total_seconds'] / 60:.0f} |")
