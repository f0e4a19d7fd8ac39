import numpy as np

from dataaudit.cluster.labels import class_tfidf_keywords, keyword_label

CORPUS = [
    "how do I reset my password",
    "forgot my password, reset it please",
    "password reset link is not working",
    "what is the weather tomorrow",
    "will it rain tomorrow, weather please",
    "weather forecast for tomorrow",
    "please help me",
]
LABELS = np.array([0, 0, 0, 1, 1, 1, -1])


def test_keywords_are_the_words_that_distinguish_each_cluster():
    keywords = class_tfidf_keywords(CORPUS, LABELS)

    assert set(keywords) == {0, 1}
    assert keywords[0][:2] == ["password", "reset"]
    assert keywords[1][:2] == ["tomorrow", "weather"]
    assert "weather" not in keywords[0] and "password" not in keywords[1]


def test_stop_words_and_words_absent_from_a_cluster_are_never_keywords():
    keywords = class_tfidf_keywords(CORPUS, LABELS)

    for cluster, words in keywords.items():
        members = " ".join(t for t, c in zip(CORPUS, LABELS) if c == cluster).lower()
        assert all(word in members for word in words)
        assert not {"my", "it", "is", "the", "how"} & set(words)


def test_noise_gets_no_keywords_and_no_clusters_gives_an_empty_mapping():
    assert -1 not in class_tfidf_keywords(CORPUS, LABELS)
    assert class_tfidf_keywords(CORPUS, np.full(len(CORPUS), -1)) == {}


def test_a_cluster_of_stop_words_only_has_no_keywords_but_a_non_empty_label():
    keywords = class_tfidf_keywords(["the and of", "it is the", "weather today"], np.array([0, 0, 1]))

    assert keywords[0] == []
    assert keyword_label(keywords[0], 0) == "cluster 0"
    assert keyword_label(keywords[1], 1) == "today / weather"


def test_an_all_stop_word_corpus_does_not_crash():
    assert class_tfidf_keywords(["the", "and", ""], np.array([0, 0, 1])) == {0: [], 1: []}


def test_label_joins_the_top_three_keywords():
    assert keyword_label(["a", "b", "c", "d"], 3) == "a / b / c"


def test_words_the_texts_share_come_before_a_one_off():
    """"card" is in every text of the topic but common elsewhere; "boyfriend" is in one text and
    nowhere else, which c-TF-IDF alone ranks first."""
    topic = ["my card was blocked", "card blocked again", "card blocked my boyfriend says"]
    elsewhere = [f"card payment card fee card {word}" for word in ("one", "two", "three", "four", "five", "six")]
    labels = np.array([0] * len(topic) + [-1] * len(elsewhere))
    keywords = class_tfidf_keywords(topic + elsewhere, labels)[0]
    assert keywords[:2] == ["blocked", "card"]  # in all three texts
    assert keywords.index("boyfriend") > keywords.index("card")
