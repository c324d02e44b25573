#!/usr/bin/env python3
"""The peer a Python user would write instead of twinfeed: read every article file,
split its paragraphs into Chinese and English the simple way (a paragraph with a CJK
character is Chinese, one with Latin letters is English), and write the same four
feeds as twinfeed (zh and en, RSS 2.0 and Atom) with feedgen, newest `items` first.
It writes no article pages and does none of twinfeed's cleaning.

    feedgen_build.py INBOX OUTPUT [ITEMS]
"""

import datetime
import os
import re
import sys

from feedgen.feed import FeedGenerator

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]{3}")
DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
XML_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
BASE = "http://127.0.0.1:8080/"
TZ = datetime.timezone(datetime.timedelta(hours=8))


def decode(raw):
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            pass
    return raw.decode("utf-8", "replace")


def split(path):
    with open(path, "rb") as handle:
        text = XML_FORBIDDEN.sub("", decode(handle.read()))
    date, zh, en = None, [], []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        match = DATE.match(line)
        if match and date is None:
            year, month, day = (int(part) for part in match.groups())
            try:
                date = datetime.datetime(year, month, day, tzinfo=TZ)
            except ValueError:
                pass
        elif CJK.search(line):
            zh.append(line)
        elif LATIN.search(line):
            en.append(line)
    if date is None:
        date = datetime.datetime.fromtimestamp(os.stat(path).st_mtime, TZ)
    return date, zh, en


def write(output, lang, entries, items):
    feed = FeedGenerator()
    feed.id(f"{BASE}{lang}/")
    feed.title(f"twinfeed {lang}")
    feed.link(href=f"{BASE}{lang}/", rel="alternate")
    feed.link(href=f"{BASE}{lang}/atom.xml", rel="self")
    feed.description(f"news in {lang}")
    feed.language(lang)
    newest = sorted(entries, key=lambda entry: (entry[0], entry[1]), reverse=True)[:items]
    for date, stem, paragraphs in reversed(newest):
        entry = feed.add_entry()
        entry.id(f"tag:twinfeed,2026:{stem}/{lang}")
        entry.title(paragraphs[0][:80])
        entry.link(href=f"{BASE}{lang}/{stem}.html")
        entry.published(date)
        entry.updated(date)
        entry.description(paragraphs[0][:200])
        entry.content("".join(f"<p>{p}</p>" for p in paragraphs), type="html")
    folder = os.path.join(output, lang)
    os.makedirs(folder, exist_ok=True)
    feed.rss_file(os.path.join(folder, "rss.xml"))
    feed.atom_file(os.path.join(folder, "atom.xml"))


def main():
    inbox, output = sys.argv[1], sys.argv[2]
    items = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    entries = {"zh": [], "en": []}
    for name in sorted(os.listdir(inbox)):
        if not name.endswith(".txt"):
            continue
        stem = name[:-4]
        date, zh, en = split(os.path.join(inbox, name))
        if zh:
            entries["zh"].append((date, stem, zh))
        if en:
            entries["en"].append((date, stem, en))
    for lang, found in entries.items():
        write(output, lang, found, items)


if __name__ == "__main__":
    main()
