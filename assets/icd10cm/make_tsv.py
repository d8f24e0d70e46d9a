"""Makes icd10cm-2026.tsv.gz from the ICD-10-CM tabular list (April 1, 2026) that ships
inside PyPI's simple-icd-10-cm 1.5.0:

    pip download --no-deps simple-icd-10-cm==1.5.0 -d /tmp/icd
    cd /tmp/icd && unzip -q simple_icd_10_cm-1.5.0-py3-none-any.whl
    PYTHONPATH=/tmp/icd python3 make_tsv.py

One line per code (chapters and blocks left out), tab-separated:
code, 1 if billable (a leaf) else 0, description, inclusion terms joined with " | ".
"""
import gzip

import simple_icd_10_cm as icd


def safe(f, code):
    try:
        return f(code)
    except Exception:
        return []


lines = []
for code in icd.get_all_codes(True):
    if icd.is_chapter_or_block(code):
        continue
    clean = lambda t: t.replace("\t", " ").replace("\n", " ").strip()
    terms = []
    for t in safe(icd.get_inclusion_term, code) + safe(icd.get_includes, code):
        t = clean(t)
        if t and t not in terms:
            terms.append(t)
    leaf = 1 if icd.is_leaf(code) else 0
    lines.append(f"{code}\t{leaf}\t{clean(icd.get_description(code))}\t{' | '.join(terms)}")

with gzip.open("icd10cm-2026.tsv.gz", "wb", 9) as out:
    out.write(("\n".join(lines) + "\n").encode())
print(len(lines), "codes")
