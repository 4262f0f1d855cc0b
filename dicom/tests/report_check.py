#!/usr/bin/python3
"""report_check.py REPORT.html SUMMARY.json - report.html against the summary it was written with,
read with Python's own HTML parser (independent of the C writer):
  - a complete document (doctype, html/head/body, every element closed in order);
  - the series table has one row per series, with its status, score (%.4g), regions and volume;
  - the demo-model warning is there exactly when summary.json says the demo model was used;
  - every embedded montage (data:image/png;base64) decodes to the series' montage.png, byte for
    byte, and each series lists its regions;
  - nothing is loaded from elsewhere (no http:, no external script or style).
Exit 0 when all hold; prints what differs otherwise."""
import base64
import json
import os
import sys
from html.parser import HTMLParser

VOID = {"meta", "img", "br", "hr", "link", "input"}


class Report(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.doctype = [], [], False
        self.tables, self.imgs, self.sections, self.warn = [], [], [], ""
        self.cell, self.row, self.in_warn = None, None, False

    def handle_decl(self, decl):
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for v in a.values():
            if v and (v.startswith("http:") or v.startswith("https:")):
                self.errors.append(f"external reference {v[:60]}")
        if tag in ("script", "link"):
            self.errors.append(f"<{tag}> in a self-contained report")
        if tag == "img":
            self.imgs.append((len(self.sections) - 1, a.get("src", "")))
        if tag == "section":
            self.sections.append({"id": a.get("id"), "tables": 0})
        if tag == "table":
            self.tables.append([])
            if self.sections and self.stack and "section" in self.stack:
                self.sections[-1]["tables"] += 1
        if tag == "tr":
            self.row = []
        if tag in ("td", "th"):
            self.cell = ""
        if tag == "p" and a.get("class") == "warn":
            self.in_warn = True
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag in ("td", "th") and self.row is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        if tag == "tr" and self.tables:
            self.tables[-1].append(self.row)
            self.row = None
        if tag == "p":
            self.in_warn = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        if self.in_warn:
            self.warn += data


def main(report_path, summary_path):
    summary = json.load(open(summary_path))
    r = Report()
    r.feed(open(report_path, encoding="utf-8").read())
    r.close()
    bad = list(r.errors)
    if not r.doctype:
        bad.append("no <!DOCTYPE html>")
    if r.stack:
        bad.append(f"unclosed {r.stack}")
    series = summary["series"]
    table = next((t for t in r.tables if t and t[0][:3] == ["#", "patient", "series"]), None)
    if table is None:
        bad.append("no series table")
    else:
        rows = table[1:]
        if len(rows) != len(series):
            bad.append(f"{len(rows)} rows for {len(series)} series")
        for i, (cells, s) in enumerate(zip(rows, series)):
            score = s.get("series_score")
            want = {3: s["status"], 5: "%.4g" % score if isinstance(score, (int, float)) else "\u2013",
                    7: str(s.get("regions", "\u2013")) if "regions" in s else "\u2013"}
            for col, w in want.items():
                if cells[col] != w:
                    bad.append(f"series {i + 1}: column {col} is '{cells[col]}', summary says '{w}'")
    demo = "demo_model" in summary
    if demo != r.warn.startswith("DEMO MODEL"):
        bad.append(f"demo warning {'missing' if demo else 'shown without the demo model'}")
    embedded = 0
    for sec, src in r.imgs:
        if not src.startswith("data:image/png;base64,"):
            continue
        row = series[sec]
        path = os.path.join(row["output_dir"], "montage.png")
        if not os.path.exists(path):
            path = os.path.join(row["output_dir"], "vol000", "montage.png")
        if base64.b64decode(src.split(",", 1)[1]) != open(path, "rb").read():
            bad.append(f"series {sec + 1}: embedded montage differs from {path}")
        embedded += 1
    with_montage = sum(1 for s in series if "montage.png" in s.get("files", []))
    if embedded != min(with_montage, 24):
        bad.append(f"{embedded} montages embedded, {with_montage} series have one")
    if len(r.sections) != len(series):
        bad.append(f"{len(r.sections)} sections for {len(series)} series")
    for i, s in enumerate(series):
        if s.get("region_list") and i < len(r.sections) and r.sections[i]["tables"] != 1:
            bad.append(f"series {i + 1}: no regions table")
    for b in bad:
        print(b)
    print(f"report.html: {len(series)} series, {embedded} montages embedded, "
          f"demo warning {'shown' if demo else 'absent'}: {'ok' if not bad else 'BAD'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
