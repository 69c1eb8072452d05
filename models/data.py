"""Text data shared by the examples, benchmarks and training scripts."""

import pydoc_data.topics


def default_corpus() -> str:
    """Return Python's reference documentation topics as one string.

    This is the text behind ``help("topics")`` (about 465 KB of English prose
    and code samples on CPython 3.11). It ships with CPython in the
    ``pydoc_data`` package, so it needs no download and is identical on every
    machine with the same Python version. Topics are joined in sorted order,
    separated by blank lines, so the result is deterministic.
    """
    topics = pydoc_data.topics.topics
    return "\n\n".join(topics[name] for name in sorted(topics))
