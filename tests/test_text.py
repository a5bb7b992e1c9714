"""TextSequenceVectorizer: raw documents to sequences of token ids.

Expected ids are counted by hand in the comments next to them; the vocabulary
selection is compared with scikit-learn's CountVectorizer, an independent
implementation of the same rules.
"""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import sklearn_lstm
from sklearn_lstm import LSTMClassifier, TextSequenceVectorizer

# red: 3 occurrences, blue: 2, green: 2, yellow: 1. blue and green tie, and
# blue comes first alphabetically: red 2, blue 3, green 4, yellow 5.
COLOURS = ["red blue red", "Green red", "blue green yellow"]
COLOUR_IDS = {"red": 2, "blue": 3, "green": 4, "yellow": 5}

# Occurrences (documents): apple 6 (5), banana 4 (4), cherry 3 (3), date,
# elder, fig, grape 1 (1). No tie at the cut of max_features=1, 2 or 3.
FRUITS = [
    "apple banana cherry apple",
    "apple banana date",
    "apple cherry elder fig",
    "banana apple grape",
    "Apple Banana Cherry",
]


def assert_sequences_equal(actual, expected, dtype=np.int64):
    assert isinstance(actual, list)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert isinstance(a, np.ndarray)
        assert a.dtype == dtype
        assert_array_equal(a, e, strict=False)
        assert a.ndim == 1


# ----------------------------------------------------- scikit-learn's checks
# As for CountVectorizer (string input, no 2D array), scikit-learn runs only
# check_estimator_cloneable on a text transformer and skips the rest, which
# feed 2D numeric arrays.
@parametrize_with_checks([TextSequenceVectorizer()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# The checks of the estimator API that need no data, which therefore apply to a
# text transformer too; parametrize_with_checks leaves them out for string input.
@pytest.mark.parametrize(
    "check_name",
    [
        "check_no_attributes_set_in_init",
        "check_get_params_invariance",
        "check_set_params",
        "check_parameters_default_constructible",
        "check_estimator_repr",
        "check_do_not_raise_errors_in_init_or_set_params",
        "check_valid_tag_types",
        "check_mixin_order",
        "check_param_validation",
    ],
)
def test_api_checks_without_data(check_name):
    getattr(estimator_checks, check_name)(
        "TextSequenceVectorizer", TextSequenceVectorizer()
    )


def test_exported():
    assert "TextSequenceVectorizer" in sklearn_lstm.__all__
    assert sklearn_lstm.TextSequenceVectorizer is TextSequenceVectorizer


# ------------------------------------------------------------- ids and order
def test_ids_by_decreasing_frequency_ties_alphabetical():
    vectorizer = TextSequenceVectorizer()
    Xt = vectorizer.fit_transform(COLOURS)
    assert vectorizer.vocabulary_ == COLOUR_IDS
    assert_sequences_equal(Xt, [[2, 3, 2], [4, 2], [3, 4, 5]])
    assert vectorizer.get_vocabulary() == [
        "",
        "[UNK]",
        "red",
        "blue",
        "green",
        "yellow",
    ]


def test_tie_order_does_not_depend_on_order_of_appearance():
    for docs in (["zeta alpha mu"], ["mu zeta alpha"], ["alpha mu", "zeta"]):
        vocabulary = TextSequenceVectorizer().fit(docs).vocabulary_
        assert vocabulary == {"alpha": 2, "mu": 3, "zeta": 4}


def test_fit_then_transform_equals_fit_transform():
    fitted = TextSequenceVectorizer().fit(COLOURS)
    assert_sequences_equal(
        fitted.transform(COLOURS), TextSequenceVectorizer().fit_transform(COLOURS)
    )


def test_zero_is_never_a_token():
    rng = np.random.RandomState(0)
    words = [f"w{i}" for i in range(30)]
    docs = [" ".join(rng.choice(words, size=rng.randint(0, 12))) for _ in range(50)]
    vectorizer = TextSequenceVectorizer(max_features=10)
    Xt = vectorizer.fit_transform(docs) + vectorizer.transform(["w1 nope", ""])
    assert min(vectorizer.vocabulary_.values()) == 2
    assert sorted(vectorizer.vocabulary_.values()) == list(range(2, 12))
    assert all(len(x) >= 1 and x.min() >= 1 and x.max() <= 11 for x in Xt)


def test_tokens_outside_the_vocabulary_are_one():
    vectorizer = TextSequenceVectorizer().fit(COLOURS)
    # purple and orange were never seen; "a" is no token (one character).
    Xt = vectorizer.transform(["purple red", "orange", "red a blue"])
    assert_sequences_equal(Xt, [[1, 2], [1], [2, 3]])


def test_document_without_tokens_gives_one_oov_step():
    vectorizer = TextSequenceVectorizer().fit(COLOURS)
    # "", punctuation only, and single characters: no token at all.
    assert_sequences_equal(vectorizer.transform(["", "?!", "a b"]), [[1], [1], [1]])
    # In fit too, where the document still counts for min_df and max_df.
    assert_sequences_equal(
        TextSequenceVectorizer().fit_transform(["", "red red"]), [[1], [2, 2]]
    )


def test_dtype():
    Xt = TextSequenceVectorizer(dtype=np.int32).fit_transform(COLOURS)
    assert_sequences_equal(Xt, [[2, 3, 2], [4, 2], [3, 4, 5]], dtype=np.int32)
    Xt = TextSequenceVectorizer(dtype="uint8").fit_transform(COLOURS)
    assert_sequences_equal(Xt, [[2, 3, 2], [4, 2], [3, 4, 5]], dtype=np.uint8)
    vectorizer = TextSequenceVectorizer(dtype=np.float32).fit(COLOURS)
    Xt = vectorizer.transform(COLOURS)
    assert_sequences_equal(Xt, [[2, 3, 2], [4, 2], [3, 4, 5]], dtype=np.float32)
    assert vectorizer.inverse_transform(Xt) == [
        ["red", "blue", "red"], ["green", "red"], ["blue", "green", "yellow"]
    ]


@pytest.mark.parametrize("dtype", [np.float16, "complex64", "U1"])
def test_dtype_that_is_not_an_id_type(dtype):
    with pytest.raises(ValueError, match="dtype must be an integer dtype"):
        TextSequenceVectorizer(dtype=dtype).fit(COLOURS)


# ------------------------------------- vocabulary selection, as CountVectorizer
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"min_df": 2},
        {"min_df": 0.5},
        {"max_df": 3},
        {"max_df": 0.7},
        {"min_df": 2, "max_df": 4},
        {"max_features": 1},
        {"max_features": 3},
        {"max_features": 3, "max_df": 0.9},
        {"lowercase": False},
        {"lowercase": False, "max_features": 3},
        {"token_pattern": r"(?u)\b\w+\b"},
        {"analyzer": "char"},
        {"analyzer": "char", "max_features": 4, "min_df": 2},
        {"analyzer": str.split},
    ],
)
def test_vocabulary_selection_as_count_vectorizer(params):
    vectorizer = TextSequenceVectorizer(**params).fit(FRUITS)
    counter = CountVectorizer(**params)
    counts = np.asarray(counter.fit_transform(FRUITS).sum(axis=0)).ravel()
    assert set(vectorizer.vocabulary_) == set(counter.vocabulary_)
    # Ids follow the occurrences CountVectorizer counts, ties alphabetically.
    count_of = {t: counts[j] for t, j in counter.vocabulary_.items()}
    by_id = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    assert by_id == sorted(count_of, key=lambda t: (-count_of[t], t))


def test_max_features_ties_at_the_cut_are_alphabetical():
    vocabulary = TextSequenceVectorizer(max_features=2).fit(["cc bb aa dd"]).vocabulary_
    assert vocabulary == {"aa": 2, "bb": 3}


def test_max_features_keeps_the_most_frequent():
    # red 3, then blue and green 2: the two most frequent are red and blue.
    vectorizer = TextSequenceVectorizer(max_features=2)
    Xt = vectorizer.fit_transform(COLOURS)
    assert vectorizer.vocabulary_ == {"red": 2, "blue": 3}
    assert_sequences_equal(Xt, [[2, 3, 2], [1, 2], [3, 1, 1]])


def test_min_df_and_max_df():
    # Documents: red 2, blue 2, green 2, yellow 1, of 3.
    assert TextSequenceVectorizer(min_df=2).fit(COLOURS).vocabulary_ == {
        "red": 2,
        "blue": 3,
        "green": 4,
    }
    assert TextSequenceVectorizer(max_df=0.5).fit(COLOURS).vocabulary_ == {"yellow": 2}


# ------------------------------------------------------------------ analyzers
def test_char_analyzer():
    # Two spaces become one; a, b and c occur twice, the space once.
    vectorizer = TextSequenceVectorizer(analyzer="char")
    Xt = vectorizer.fit_transform(["abCa", "b  c"])
    assert vectorizer.vocabulary_ == {"a": 2, "b": 3, "c": 4, " ": 5}
    assert_sequences_equal(Xt, [[2, 3, 4, 2], [3, 5, 4]])


def test_callable_analyzer_keeps_case_and_single_characters():
    vectorizer = TextSequenceVectorizer(analyzer=str.split)
    Xt = vectorizer.fit_transform(["A b A", "b x"])
    # A 2, b 2 (ties: "A" < "b"), x 1.
    assert vectorizer.vocabulary_ == {"A": 2, "b": 3, "x": 4}
    assert_sequences_equal(Xt, [[2, 3, 2], [3, 4]])


def test_lowercase():
    docs = ["Red red RED"]
    vectorizer = TextSequenceVectorizer()
    assert_sequences_equal(vectorizer.fit_transform(docs), [[2, 2, 2]])
    assert vectorizer.vocabulary_ == {"red": 2}
    vectorizer = TextSequenceVectorizer(lowercase=False)
    # One each, in code point order: "RED" < "Red" < "red".
    assert_sequences_equal(vectorizer.fit_transform(docs), [[3, 4, 2]])
    assert vectorizer.vocabulary_ == {"RED": 2, "Red": 3, "red": 4}


def test_token_pattern_with_one_group():
    vectorizer = TextSequenceVectorizer(token_pattern=r"#(\w+)")
    assert_sequences_equal(vectorizer.fit_transform(["#a b #c #a"]), [[2, 3, 2]])
    assert vectorizer.vocabulary_ == {"a": 2, "c": 3}


# ----------------------------------------------------------------- max_length
def test_max_length_keeps_the_first_tokens():
    vectorizer = TextSequenceVectorizer(max_length=2).fit(COLOURS)
    # The vocabulary comes from the first two tokens of each document: red blue,
    # green red, blue green: 2 each, alphabetical. yellow, read only third, is
    # unknown.
    assert vectorizer.vocabulary_ == {"blue": 2, "green": 3, "red": 4}
    Xt = vectorizer.transform(COLOURS + ["purple red blue", "yellow", ""])
    # Unknown tokens take a step too.
    assert_sequences_equal(Xt, [[4, 2], [3, 4], [2, 3], [1, 4], [1], [1]])


def test_max_length_every_id_of_the_vocabulary_is_read_in_fit():
    """A Pipeline's estimator fits on fit_transform's ids: every token of the
    vocabulary must be among them, or a model with an embedding has rows it
    never trained (and no row at all for the largest ids it never saw)."""
    vectorizer = TextSequenceVectorizer(max_length=3)
    Xt = vectorizer.fit_transform(FRUITS)
    ids = np.unique(np.concatenate(Xt))
    assert_array_equal(ids[ids > 1], np.arange(2, len(vectorizer.vocabulary_) + 2))
    pipe = make_pipeline(
        TextSequenceVectorizer(max_length=3),
        LSTMClassifier(2, embedding_dim=2, max_iter=1, random_state=0),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(FRUITS, [0, 1, 0, 1, 0])
    # fig and grape come fourth only: unknown, and no error in predict.
    assert pipe.predict(["fig grape elder"]).shape == (1,)


# ---------------------------------------------------------- inverse_transform
def test_inverse_transform_round_trip():
    vectorizer = TextSequenceVectorizer().fit(COLOURS)
    tokens = vectorizer.inverse_transform(vectorizer.transform(COLOURS))
    assert tokens == [
        ["red", "blue", "red"],
        ["green", "red"],
        ["blue", "green", "yellow"],
    ]


def test_inverse_transform_unknown_tokens_and_padding():
    vectorizer = TextSequenceVectorizer().fit(COLOURS)
    padded = np.array([[2, 1, 3], [4, 0, 0], [1, 0, 0]])
    assert vectorizer.inverse_transform(padded) == [
        ["red", "[UNK]", "blue"],
        ["green"],
        ["[UNK]"],
    ]
    assert vectorizer.inverse_transform([[5], np.array([], dtype=int), []]) == [
        ["yellow"],
        [],
        [],
    ]


@pytest.mark.parametrize(
    "X, error, message",
    [
        (
            [[2], [6]],
            ValueError,
            "Sequence 1 holds the id 6 at step 0, outside the vocabulary's ids 0 to 5.",
        ),
        ([[2, -1]], ValueError, "Sequence 0 holds the id -1 at step 1"),
        (
            [[2.5, 3.0]],
            TypeError,
            "Sequence 0 has dtype float64; token ids must be integers.",
        ),
        (
            [[[2, 3]]],
            ValueError,
            r"Sequence 0 must be 1D, one id per step; got an "
            r"array of shape \(1, 2\).",
        ),
        (
            np.array([2, 3]),
            ValueError,
            r"X must be a list of id sequences or a 2D "
            r"array of them padded with zeros; got ndarray of shape \(2,\).",
        ),
        (np.zeros((1, 2, 3), dtype=int), ValueError, r"of shape \(1, 2, 3\)"),
        ("red", ValueError, "got str."),
    ],
)
def test_inverse_transform_bad_input(X, error, message):
    vectorizer = TextSequenceVectorizer().fit(COLOURS)
    with pytest.raises(error, match=message):
        vectorizer.inverse_transform(X)


# ------------------------------------------------------------------ input forms
@pytest.mark.parametrize(
    "convert",
    [
        list,
        tuple,
        lambda docs: np.array(docs),  # fixed-width unicode
        lambda docs: np.array(docs, dtype=object),
        lambda docs: (d for d in docs),  # read once, even by fit_transform
        lambda docs: [d.encode("utf-8") for d in docs],
    ],
    ids=["list", "tuple", "unicode-array", "object-array", "generator", "bytes"],
)
def test_input_forms(convert):
    vectorizer = TextSequenceVectorizer()
    assert_sequences_equal(
        vectorizer.fit_transform(convert(COLOURS)), [[2, 3, 2], [4, 2], [3, 4, 5]]
    )
    assert vectorizer.vocabulary_ == COLOUR_IDS
    assert_sequences_equal(
        vectorizer.transform(convert(COLOURS)), [[2, 3, 2], [4, 2], [3, 4, 5]]
    )
    assert TextSequenceVectorizer().fit(convert(COLOURS)).vocabulary_ == COLOUR_IDS


def test_pandas_series():
    pd = pytest.importorskip("pandas")
    docs = pd.Series(COLOURS, index=[10, 20, 30])
    vectorizer = TextSequenceVectorizer()
    assert_sequences_equal(
        vectorizer.fit_transform(docs), [[2, 3, 2], [4, 2], [3, 4, 5]]
    )
    # A missing value is None in an object Series, NaN in a string one.
    with pytest.raises(TypeError, match="Document 1 is None of type NoneType"):
        vectorizer.transform(pd.Series(["red", None], dtype=object))
    with pytest.raises(TypeError, match="Replace or drop missing documents first."):
        vectorizer.transform(pd.Series(["red", None], dtype="string"))
    with pytest.raises(ValueError, match=r"got an array of shape \(3, 1\)"):
        vectorizer.transform(pd.DataFrame({"text": COLOURS}))


def test_bytes_decoding():
    vectorizer = TextSequenceVectorizer()
    vectorizer.fit(["café olé".encode(), "café"])
    assert vectorizer.vocabulary_ == {"café": 2, "olé": 3}
    latin = TextSequenceVectorizer(encoding="latin-1")
    assert latin.fit(["café".encode("latin-1")]).vocabulary_ == {"café": 2}
    with pytest.raises(
        ValueError, match="Document 1 cannot be decoded with encoding='utf-8'"
    ):
        vectorizer.transform(["red", b"caf\xe9"])
    replacing = TextSequenceVectorizer(decode_error="ignore")
    assert replacing.fit([b"caf\xe9 bar"]).vocabulary_ == {"bar": 2, "caf": 3}


CANNOT_READ = "Iterable over raw text documents expected, {} object received."


@pytest.mark.parametrize(
    "X, error, message",
    [
        ("red blue", ValueError, CANNOT_READ.format("str")),
        (b"red blue", ValueError, CANNOT_READ.format("bytes")),
        (None, TypeError, CANNOT_READ.format("NoneType")),
        (3, TypeError, CANNOT_READ.format("int")),
        (
            ["red", None],
            TypeError,
            "Document 1 is None of type NoneType; every document must be a str",
        ),
        (["red", "blue", 3.5], TypeError, "Document 2 is 3.5 of type float"),
        ([np.nan], TypeError, "Document 0 is nan of type float"),
        (
            [["red", "blue"]],
            TypeError,
            r"Document 0 is \['red', 'blue'\] of type "
            "list",
        ),
        (
            np.array([["red", "blue"]]),
            ValueError,
            "raw_documents must be one-dimensional, one document per sample; "
            r"got an array of shape \(1, 2\).",
        ),
        (np.array("red"), ValueError, r"got an array of shape \(\)."),
    ],
)
@pytest.mark.parametrize("method", ["fit", "transform"])
def test_bad_input(X, error, message, method):
    vectorizer = TextSequenceVectorizer()
    if method == "transform":
        vectorizer.fit(COLOURS)
    with pytest.raises(error, match=message):
        getattr(vectorizer, method)(X)


@pytest.mark.parametrize(
    "tokens, message",
    [
        (
            "red",
            "The analyzer returned a str for document 0; it must return a list "
            "of str tokens.",
        ),
        (
            None,
            "The analyzer returned a NoneType for document 0; it must return a "
            "list of str tokens.",
        ),
        (
            ["red", 3],
            r"The analyzer returned a token of type int \(3\) for document "
            "0; tokens must be str.",
        ),
    ],
)
def test_callable_analyzer_bad_output(tokens, message):
    with pytest.raises(TypeError, match=message):
        TextSequenceVectorizer(analyzer=lambda doc: tokens).fit(["anything"])


@pytest.mark.parametrize(
    "params, docs, message",
    [
        ({}, [], "raw_documents holds no document; at least one is needed"),
        ({}, ["", "a ?"], "Empty vocabulary: no document holds a token."),
        (
            {"min_df": 2},
            ["red", "blue"],
            "After pruning, no terms remain. Try a lower min_df or a higher max_df.",
        ),
        (
            {"min_df": 2, "max_df": 1},
            COLOURS,
            "max_df=1 corresponds to 1 of the 3 "
            r"documents, fewer than min_df=2 \(2\)",
        ),
        (
            {"min_df": 0.9, "max_df": 0.5},
            COLOURS,
            r"max_df=0.5 corresponds to 1.5 "
            r"of the 3 documents, fewer than min_df=0.9 \(2.7\)",
        ),
        (
            {"dtype": np.float16},
            COLOURS,
            "dtype must be an integer dtype, such as np.int64 or np.int32, or "
            "np.float32 or np.float64; got <class 'numpy.float16'>.",
        ),
        ({"dtype": bool}, COLOURS, "dtype must be an integer dtype"),
        ({"dtype": "nonsense"}, COLOURS, "dtype must be an integer dtype"),
        (
            {"dtype": np.int8},
            [" ".join(f"w{i:03d}" for i in range(127))],
            "dtype int8 cannot hold the largest id, 128, exactly; use a wider dtype "
            "or a lower max_features.",
        ),
        (
            {"token_pattern": "("},
            COLOURS,
            r"token_pattern '\(' is not a valid "
            "regular expression",
        ),
        (
            {"token_pattern": r"(\w)(\w)"},
            COLOURS,
            "has 2 capturing groups; it may have at most one, the token.",
        ),
    ],
)
def test_bad_fit(params, docs, message):
    with pytest.raises(ValueError, match=message):
        TextSequenceVectorizer(**params).fit(docs)


def test_int8_holds_126_tokens():
    docs = [" ".join(f"w{i:03d}" for i in range(126))]
    Xt = TextSequenceVectorizer(dtype=np.int8).fit_transform(docs)
    assert_sequences_equal(Xt, [np.arange(2, 128)], dtype=np.int8)


@pytest.mark.parametrize(
    "params",
    [
        {"max_df": 1.5},
        {"min_df": 0},
        {"max_features": 0},
        {"max_length": 0},
        {"analyzer": "char_wb"},
        {"lowercase": "yes"},
        {"decode_error": "skip"},
    ],
)
def test_invalid_parameters(params):
    with pytest.raises(InvalidParameterError):
        TextSequenceVectorizer(**params).fit(COLOURS)


def test_not_fitted():
    vectorizer = TextSequenceVectorizer()
    for method in (vectorizer.transform, vectorizer.inverse_transform):
        with pytest.raises(NotFittedError):
            method(COLOURS)
    with pytest.raises(NotFittedError):
        vectorizer.get_vocabulary()
    assert not hasattr(vectorizer.fit(COLOURS), "n_features_in_")


# ----------------------------------------------------- clone, pickle, Pipeline
def test_clone_and_pickle():
    vectorizer = TextSequenceVectorizer(max_features=3, max_length=2, dtype=np.int32)
    copy = clone(vectorizer)
    assert copy.get_params() == vectorizer.get_params()
    assert not hasattr(copy, "vocabulary_")
    vectorizer.fit(COLOURS)
    restored = pickle.loads(pickle.dumps(vectorizer))
    assert restored.vocabulary_ == vectorizer.vocabulary_
    assert_sequences_equal(
        restored.transform(COLOURS), vectorizer.transform(COLOURS), dtype=np.int32
    )


def test_pipeline_into_lstm_classifier():
    # The estimators read float features per step: one-hot encode the ids. With
    # max_features=6 the ids run from 0 to 7.
    n_ids = 8
    pipe = make_pipeline(
        TextSequenceVectorizer(max_features=6),
        FunctionTransformer(lambda X: [np.eye(n_ids)[x] for x in X]),
        LSTMClassifier(hidden_layer_sizes=4, max_iter=2, random_state=0),
    )
    docs = FRUITS + COLOURS + ["", "unknown words only"]
    y = ["fruit"] * 5 + ["colour"] * 3 + ["fruit", "colour"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(docs, y)
    assert len(pipe[0].get_vocabulary()) == n_ids
    predicted = pipe.predict(["apple red", "", "never seen"])
    assert predicted.shape == (3,)
    assert set(predicted) <= {"fruit", "colour"}
    assert pipe.predict_proba(docs).shape == (10, 2)
