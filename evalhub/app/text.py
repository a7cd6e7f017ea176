"""Data shown inside Markdown (titles, captions) is escaped first: a model folder named `sft_v2_final` must
not turn italic, and nothing from the store may become a link, an image or markup. Long texts (answers,
prompts, judge reasons) are not passed through Markdown at all: the pages draw them with st.text."""

import re

# CommonMark lets a backslash escape any ASCII punctuation character.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def md_literal(text: object) -> str:
    """`text` escaped so that Markdown shows it character for character."""
    return _PUNCTUATION.sub(r"\\\1", str(text)).replace("\n", " ")
