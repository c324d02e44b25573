#!/usr/bin/env python3
"""A real feed reader subscribes to twinfeed: newsboat (Debian) reloads the RSS and Atom
feeds of both languages served by `twinfeed run`, and its cache must hold every item of
each feed with its title, as feedparser reads them from the same server.

Usage: newsboat_check.py TWINFEED_BINARY SITE_FOLDER
SITE_FOLDER must hold an inbox/ of articles with both languages (the seeds).
"""

import pathlib
import sqlite3
import subprocess
import sys

import feedparser

from served import twinfeed_serving, wait_http






def main():
    binary, site = (pathlib.Path(arg).resolve() for arg in sys.argv[1:3])
    with twinfeed_serving(binary, site) as base:
        # One reader per format: newsboat keeps one copy of an item per GUID, and the RSS
        # and Atom feeds of a language share their ids.
        for name in ("rss.xml", "atom.xml"):
            urls = [f"{base}/{lang}/{name}" for lang in ("zh", "en")]
            reader = site / f"newsboat-{name}"
            reader.mkdir(exist_ok=True)
            (reader / "urls").write_text("\n".join(urls) + "\n")
            (reader / "config").write_text("")
            cache = reader / "cache.db"
            subprocess.run(
                ["newsboat", "-u", str(reader / "urls"), "-C", str(reader / "config"),
                 "-c", str(cache), "-x", "reload"],
                check=True, timeout=120, stdout=subprocess.DEVNULL,
            )
            with sqlite3.connect(cache) as db:
                for url in urls:
                    expected = [entry.title for entry in feedparser.parse(wait_http(url)).entries]
                    seen = [row[0] for row in db.execute(
                        "SELECT title FROM rss_item WHERE feedurl = ?", (url,))]
                    if not expected:
                        sys.exit(f"{url}: the feed has no entries")
                    if sorted(seen) != sorted(expected):
                        sys.exit(f"{url}: newsboat has {seen}, the feed has {expected}")
                    if not all(title.strip() for title in seen):
                        sys.exit(f"{url}: an item without a title: {seen}")
                    print(f"{url}: newsboat sees all {len(seen)} items with their titles")


if __name__ == "__main__":
    main()
