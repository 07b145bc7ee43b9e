"""Report file names: one per subject, even for names that differ only in unusual characters."""

from __future__ import annotations

from cascade.report.build import subject_slug


def test_subjects_differing_in_unusual_characters_get_different_names():
    names = ["ana b", "ana/b", "ana:b", "ana-b", "ána b", "ana b ", "../ana b"]
    slugs = [subject_slug(name) for name in names]
    assert len(set(slugs)) == len(names)
    for slug in slugs:
        assert "/" not in slug and " " not in slug and not slug.startswith(".")


def test_slug_is_stable_and_readable():
    assert subject_slug("site.example.org") == subject_slug("site.example.org")
    assert subject_slug("site.example.org").startswith("site.example.org-")
    assert subject_slug("???").startswith("subject-")
