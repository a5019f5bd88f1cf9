import numpy as np
import pytest

from cfcsp_sdk import InvalidInputError
from cfcsp_sdk.sampling import Sampling, chunks


def test_defaults_and_numpy_numbers():
    assert Sampling().kwargs() == {"fps": None, "stride": 1, "max_frames": None} and Sampling().every_frame
    assert Sampling(stride=None) == Sampling()
    s = Sampling(np.float32(2.5), np.int64(1), np.int32(7))
    assert s.kwargs() == {"fps": 2.5, "stride": 1, "max_frames": 7} and not s.every_frame
    assert type(s.fps) is float and type(s.max_frames) is int


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"fps": 0}, "fps"),
        ({"fps": True}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"fps": "5"}, "fps"),
        ({"stride": 0}, "stride"),
        ({"stride": 2.0}, "stride"),
        ({"stride": True}, "stride"),
        ({"max_frames": 0}, "max_frames"),
        ({"max_frames": 1.5}, "max_frames"),
        ({"fps": 5, "stride": 2}, "fps=5 and stride=2: sample by time"),
    ],
)
def test_bad_sampling_is_refused_when_made(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        Sampling(**kwargs)


def test_chunks_are_lazy_and_keep_the_tail():
    assert list(chunks(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunks([], 4)) == [] and list(chunks(range(4), 4)) == [[0, 1, 2, 3]]
    taken = []

    def items():
        for i in range(10):
            taken.append(i)
            yield i

    first = next(chunks(items(), 4))
    assert first == [0, 1, 2, 3] and taken == [0, 1, 2, 3]
    with pytest.raises(InvalidInputError):
        list(chunks(range(3), 0))
