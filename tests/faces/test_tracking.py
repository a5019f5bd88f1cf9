from cfcsp_sdk.faces import Detection, IouTracker


def det(x, y, s=50):
    return Detection(box=(x, y, x + s, y + s))


def test_two_moving_faces_keep_their_ids():
    t = IouTracker()
    seen = []
    for k in range(20):
        ids, _ = t.update([det(100 + 3 * k, 100), det(400 - 3 * k, 120)])
        seen.append(ids)
        assert len(set(ids)) == 2
    assert all(ids == seen[0] for ids in seen)


def test_order_of_detections_does_not_swap_ids():
    t = IouTracker()
    a, b = t.update([det(0, 0), det(200, 0)])[0]
    assert t.update([det(201, 1), det(1, 1)])[0] == [b, a]


def test_gap_longer_than_max_age_gives_a_new_id():
    t = IouTracker(max_age=3)
    (first,), _ = t.update([det(10, 10)])
    for _ in range(2):
        t.update([])
    assert t.update([det(11, 10)])[0] == [first]  # short gap: same person
    ended = []
    for _ in range(4):
        ended += t.update([])[1]
    assert ended == [first]
    (again,), _ = t.update([det(11, 10)])
    assert again != first


def test_overlapping_detections_never_share_an_id():
    t = IouTracker()
    t.update([det(0, 0)])
    ids, _ = t.update([det(2, 0), det(4, 0)])
    assert len(set(ids)) == 2
