"""Keyword labels for clusters by class-based TF-IDF (c-TF-IDF), as BERTopic does.

All member texts of a cluster are treated as one document, so a word scores high when it
is frequent inside the cluster and rare across clusters. Noise rows take part as one more
class: words common in noise are thereby discounted too, but noise gets no label.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: How many keywords make up a cluster's label.
LABEL_KEYWORDS = 3
#: Separator between a label's keywords.
LABEL_SEPARATOR = " / "


def class_tfidf_keywords(texts: Sequence[str], labels: np.ndarray, *, top_n: int = 10) -> dict[int, list[str]]:
    """The ``top_n`` c-TF-IDF keywords of every cluster (``labels >= 0``), best first.

    Score = (count of the word in the cluster / words in the cluster)
            * log(1 + average words per class / count of the word in all classes).
    Words that do not occur in a cluster are never among its keywords, so a cluster of
    stop words only gets an empty list. Words in at least two of a cluster's texts come before
    words in only one: in a small cluster a typo or a one-off name ("goign", "boyfriend" in ten
    banking prompts) is rare everywhere else and would otherwise outrank what the texts share.
    """
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    labels = np.asarray(labels, dtype=np.int64)
    clusters = np.unique(labels[labels >= 0])
    keywords: dict[int, list[str]] = {int(c): [] for c in clusters}
    if clusters.size == 0:
        return keywords
    try:
        counts = CountVectorizer(stop_words="english").fit(texts)
    except ValueError:  # empty vocabulary: every text is stop words, digits or blank
        return keywords
    doc_term = counts.transform(texts)
    classes = np.unique(labels)  # noise (-1), where present, is the first class
    class_index = np.searchsorted(classes, labels)
    membership = sparse.csr_matrix(
        (np.ones(len(labels)), (class_index, np.arange(len(labels)))), shape=(len(classes), len(labels))
    )
    class_term = np.asarray((membership @ doc_term).todense(), dtype=np.float64)
    shared = np.asarray((membership @ (doc_term > 0).astype(np.float64)).todense()) >= 2  # in two texts or more
    words_per_class = class_term.sum(axis=1, keepdims=True)
    term_frequency = class_term / np.maximum(words_per_class, 1.0)
    idf = np.log1p(words_per_class.mean() / np.maximum(class_term.sum(axis=0), 1.0))
    scores = term_frequency * idf
    vocabulary = counts.get_feature_names_out()
    for row, cluster in enumerate(classes):
        if cluster < 0:
            continue
        order = np.lexsort((-scores[row], ~shared[row]))  # shared words first, then by score; ties alphabetically
        present = order[class_term[row, order] > 0][:top_n]
        keywords[int(cluster)] = [str(vocabulary[j]) for j in present]
    return keywords


def keyword_label(keywords: Sequence[str], cluster: int) -> str:
    """The top keywords joined; clusters without keywords fall back to their id."""
    return LABEL_SEPARATOR.join(keywords[:LABEL_KEYWORDS]) or f"cluster {cluster}"
