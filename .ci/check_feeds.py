#!/usr/bin/env python3
"""Checks every feed under an output folder with Python's feedparser, the parser most
readers' ecosystems trust: no bozo error, every entry has id, title, link and date, and
the feed says its language. Usage: check_feeds.py OUTPUT_DIR [MIN_ENTRIES]"""
import sys
from pathlib import Path

import feedparser

output = Path(sys.argv[1])
min_entries = int(sys.argv[2]) if len(sys.argv) > 2 else 1
failures = []
checked = 0
for lang in ("zh", "en"):
    for name in ("atom.xml", "rss.xml"):
        path = output / lang / name
        feed = feedparser.parse(path.read_bytes())
        checked += 1
        where = f"{lang}/{name}"
        if feed.bozo:
            failures.append(f"{where}: not well-formed: {feed.bozo_exception}")
        if not feed.feed.get("language", "").startswith(lang):
            failures.append(f"{where}: feed language is {feed.feed.get('language')!r}")
        if len(feed.entries) < min_entries:
            failures.append(f"{where}: {len(feed.entries)} entries, expected {min_entries}+")
        for entry in feed.entries:
            for key in ("id", "title", "link", "published_parsed"):
                if not entry.get(key):
                    failures.append(f"{where}: entry {entry.get('id')!r} has no {key}")
for failure in failures:
    print("FAIL", failure)
print(f"feedparser {feedparser.__version__}: {checked} feeds, {len(failures)} failures")
sys.exit(1 if failures else 0)
