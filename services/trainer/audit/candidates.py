"""Which pairs of images are worth checking for being one photo: a bag of visual words.

Checking every pair with keypoint matching is quadratic (5,000 images: 12.5 million pairs).
Instead each image becomes a tf-idf weighted histogram of "visual words" (its ORB descriptors,
each replaced by the nearest of a few thousand representative descriptors learnt from the
dataset itself), and each image's nearest neighbours by cosine similarity are the candidates.
Copies share most of their words whatever the rotation, crop, scale or colour; the mirror
image's histogram covers flips.

The vocabulary is a two-level tree (Nistér and Stewénius, "Scalable recognition with a
vocabulary tree", CVPR 2006): BRANCHING top-level words, each split into BRANCHING leaves, so
each descriptor is compared with 2 × BRANCHING centres instead of BRANCHING². Centres are
found by k-means (scikit-learn) over the descriptors' bits and rounded back to bits, and
descriptors are assigned by Hamming distance (OpenCV's brute-force matcher).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from services.trainer.audit.features import ImageFeatures, View
from services.trainer.audit.work import Workers

BRANCHING = 32  # words = BRANCHING²
VOCABULARY_SAMPLE = 10_000  # descriptors the vocabulary is learnt from
NEIGHBOURS = 10  # candidates per image
_ROWS_AT_ONCE = 2048  # rows of the similarity matrix held at once


@dataclass(frozen=True)
class Candidate:
    first: int
    second: int  # first < second, positions in the list of features
    similarity: float
    mirrored: bool  # the second image's mirror image matched better


@dataclass(frozen=True)
class Vocabulary:
    top: np.ndarray  # BRANCHING×32 binary centres
    leaves: list[np.ndarray]  # per top centre, its leaf centres

    @property
    def size(self) -> int:
        return len(self.top) * BRANCHING

    def words(self, descriptors: np.ndarray) -> np.ndarray:
        """The word of each descriptor: its nearest top centre, then that centre's nearest leaf."""
        top = _nearest(descriptors, self.top)
        words = np.empty(len(descriptors), np.int64)
        for branch in np.unique(top):
            members = top == branch
            words[members] = branch * BRANCHING + _nearest(descriptors[members], self.leaves[branch])
        return words


def learn_vocabulary(features: Sequence[ImageFeatures], seed: int = 0) -> Vocabulary:
    descriptors = np.concatenate([f.plain.descriptors for f in features] + [np.zeros((0, 32), np.uint8)])
    rng = np.random.default_rng(seed)
    if len(descriptors) > VOCABULARY_SAMPLE:
        descriptors = descriptors[np.sort(rng.choice(len(descriptors), VOCABULARY_SAMPLE, replace=False))]
    top = _binary_kmeans(descriptors, BRANCHING, seed)
    assigned = _nearest(descriptors, top)
    leaves = [_binary_kmeans(descriptors[assigned == branch], BRANCHING, seed) for branch in range(len(top))]
    return Vocabulary(top, leaves)


class Similarities:
    """The cosine similarity of every image's words to every other image's, and to its mirror
    image's, computed a block of rows at a time (never the whole n × n matrix at once)."""

    def __init__(self, features: Sequence[ImageFeatures], workers: Workers, seed: int = 0):
        vocabulary = learn_vocabulary(features, seed)
        plain_counts, mirrored_counts = workers.map(
            lambda views: _word_counts(views, vocabulary),
            ([f.plain for f in features], [f.mirrored for f in features]),
        )
        self.plain = _tf_idf(plain_counts, plain_counts)
        self.mirrored = _tf_idf(mirrored_counts, plain_counts)

    def __len__(self) -> int:
        return len(self.plain)

    def nearest(self, rows: Sequence[int], count: int) -> list[Candidate]:
        """Pairs of each of rows with its `count` most similar other images, the most similar first."""
        count = min(count, len(self) - 1)
        if count < 1:
            return []
        best: dict[tuple[int, int], Candidate] = {}
        for start in range(0, len(rows), _ROWS_AT_ONCE):
            block = np.asarray(rows[start : start + _ROWS_AT_ONCE])
            direct, flipped = self.plain[block] @ self.plain.T, self.plain[block] @ self.mirrored.T
            similarity = np.maximum(direct, flipped)
            similarity[np.arange(len(block)), block] = -np.inf
            nearest = np.argpartition(-similarity, count - 1, axis=1)[:, :count]
            for offset, others in enumerate(nearest):
                i = int(block[offset])
                for j in others.tolist():
                    key = (min(i, j), max(i, j))
                    score = float(similarity[offset, j])
                    if key not in best or score > best[key].similarity:
                        best[key] = Candidate(*key, score, bool(flipped[offset, j] > direct[offset, j]))
        return sorted(best.values(), key=lambda c: (-c.similarity, c.first, c.second))


def _tf_idf(counts: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rows of word counts weighted by sqrt(count) × idf (over reference) and scaled to unit length.

    The square root damps "bursts" of one word (a repeated texture) that would swamp the rest."""
    documents = np.count_nonzero(reference, axis=0)
    idf = np.log((len(reference) + 1) / (documents + 1)).astype(np.float32)
    weighted = np.sqrt(counts, dtype=np.float32) * idf
    norms = np.linalg.norm(weighted, axis=1, keepdims=True)
    return weighted / np.maximum(norms, 1e-9)


def _binary_kmeans(descriptors: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """k-means over the bits of binary descriptors, centres rounded back to bits."""
    if len(descriptors) <= clusters:  # too few to cluster: every descriptor is a centre
        return descriptors.copy() if len(descriptors) else np.zeros((1, 32), np.uint8)
    bits = np.unpackbits(descriptors, axis=1).astype(np.float32)
    # One thread: these fits are small, and the audit's own threads keep the cores busy.
    with threadpool_limits(1):
        centres = KMeans(clusters, n_init=1, max_iter=20, random_state=seed).fit(bits).cluster_centers_
    return np.packbits(centres > 0.5, axis=1)


def _nearest(descriptors: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The nearest centre (Hamming distance) of each descriptor."""
    if len(descriptors) == 0:
        return np.zeros(0, np.int64)
    matches = cv2.BFMatcher(cv2.NORM_HAMMING).match(descriptors, centres)
    nearest = np.empty(len(descriptors), np.int64)
    nearest[[m.queryIdx for m in matches]] = [m.trainIdx for m in matches]
    return nearest


def _word_counts(views: Sequence[View], vocabulary: Vocabulary) -> np.ndarray:
    """Images × words: how often each word occurs in each view. All descriptors are assigned
    at once: a matcher call per image would cost more than the matching."""
    words = vocabulary.words(np.concatenate([v.descriptors for v in views]))
    owner = np.repeat(np.arange(len(views)), [len(v) for v in views])
    counts = np.bincount(owner * vocabulary.size + words, minlength=len(views) * vocabulary.size)
    return counts.reshape(len(views), vocabulary.size).astype(np.float32)
