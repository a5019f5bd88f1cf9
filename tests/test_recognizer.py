import json

import numpy as np
import pytest

from cfcsp_sdk import FaceBatchResult, FacePrediction, InvalidInputError, ModelNotFoundError, Recognizer


@pytest.fixture(scope="module")
def rec(tiny_repo):
    return Recognizer.from_pretrained(tiny_repo)


def test_single_and_batch_predictions(rec, face_crops):
    one = rec.predict_face(face_crops[0])
    assert isinstance(one, FacePrediction)
    single = rec.predict_faces(face_crops[0])  # one return type whatever the rank of the input
    assert isinstance(single, FaceBatchResult) and len(single) == 1
    batch = rec.predict_faces(face_crops)
    assert isinstance(batch, FaceBatchResult) and len(batch) == len(face_crops)
    assert batch[0].to_dict() == one.to_dict() == single[0].to_dict()
    for p in batch:
        assert set(p.probabilities) == set(rec.labels)
        assert abs(sum(p.probabilities.values()) - 1) < 1e-5
        assert p.label == rec.labels[p.label_index]
        assert set(p.coarse_probabilities) == {"Neutral", "Happiness", "Surprise", "Other", "Negative"}
        assert abs(sum(p.coarse_probabilities.values()) - 1) < 1e-5
        neg = p.fine_probabilities["Negative"]
        assert (neg is not None) == (max(p.coarse_probabilities, key=p.coarse_probabilities.get) == "Negative")
        assert neg is None or abs(sum(neg.values()) - 1) < 1e-5
    as_list = rec.predict_faces(list(face_crops))
    assert [p.label for p in as_list] == [p.label for p in batch]


def test_rgb_and_bgr_are_honoured(rec, face_crops):
    bgr = rec.predict_faces(face_crops)
    rgb = rec.predict_faces(face_crops[..., ::-1].copy(), color="rgb")
    for a, b in zip(bgr, rgb):
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-6)
    swapped = rec.predict_faces(face_crops, color="rgb")
    diffs = [abs(a.probabilities["Neutral"] - b.probabilities["Neutral"]) for a, b in zip(bgr, swapped)]
    assert max(diffs) > 1e-4


def test_crops_of_any_size_and_grey_crops(rec, face_crops):
    import cv2

    big = cv2.resize(face_crops[0], (120, 120), interpolation=cv2.INTER_CUBIC)
    assert rec.predict_face(big).label in rec.labels
    grey = cv2.cvtColor(face_crops[0], cv2.COLOR_BGR2GRAY)
    assert rec.predict_face(grey).label in rec.labels


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((32, 32, 3), np.float32),
        np.zeros((32, 32, 3), bool),
        np.zeros((3, 32, 32, 2), np.uint8),
        np.zeros((2, 2, 32, 32, 3), np.uint8),
        np.zeros((0, 32, 3), np.uint8),
        "face.png",
        [np.zeros((32, 32, 3), np.uint8), "x"],
    ],
)
def test_bad_crops_raise_typed_errors(rec, bad):
    with pytest.raises(InvalidInputError):
        rec.predict_faces(bad)


def test_misspelt_colour_and_non_array_batches_raise_typed_errors(rec, face_crops):
    # a typo must not silently fall back to BGR
    with pytest.raises(InvalidInputError, match="color"):
        rec.predict_image(face_crops[0], color="RGB ")
    with pytest.raises(InvalidInputError, match="color"):
        rec.predict_faces(face_crops, color="brg")
    # run_cascade takes what preprocess returns; anything else is a typed error on either backend
    good = rec.preprocess(list(face_crops))
    for backend in ("onnx", "torch"):
        r = Recognizer(rec.folder, backend=backend)
        for bad in (good.tolist(), good.astype(np.float64), good[0]):
            with pytest.raises(InvalidInputError, match="float32 NCHW"):
                r.run_cascade(bad)


def test_results_export(rec, face_crops, tmp_path):
    res = rec.predict_faces(face_crops[:3])
    d = json.loads(res.to_json())
    assert d["labels"] == list(rec.labels) and len(d["predictions"]) == 3
    text = res.to_csv(tmp_path / "faces.csv")
    lines = text.strip().splitlines()
    assert lines[0].split(",") == ["face", "label", "label_index"] + [f"p_{k}" for k in rec.labels]
    assert len(lines) == 4 and (tmp_path / "faces.csv").read_text() == text


def test_save_pretrained_round_trip(rec, face_crops, tmp_path):
    out = rec.save_pretrained(tmp_path / "copy")
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "README.md",
        "coarse.onnx",
        "coarse.safetensors",
        "config.json",
        "negative.onnx",
        "negative.safetensors",
    ]
    again = Recognizer(out, backend="torch")
    a, b = rec.predict_faces(face_crops), again.predict_faces(face_crops)
    assert [p.label for p in a] == [p.label for p in b]


def test_overrides_and_bad_model_paths(tiny_repo, tmp_path):
    r = Recognizer(tiny_repo, rule="soft", fine_policy="always", smoothing_window=3, smoothing_mode="causal")
    assert (r.cascade.rule, r.cascade.fine_policy, r.smoother.window, r.smoother.mode) == (
        "soft",
        "always",
        3,
        "causal",
    )
    with pytest.raises(ModelNotFoundError):
        Recognizer(tmp_path / "nothing-here")
    with pytest.raises(ModelNotFoundError, match="holds no config.json"):
        Recognizer(tmp_path)
    with pytest.raises(InvalidInputError):
        Recognizer(tiny_repo, batch_size=0)


def test_misconfiguration_fails_at_construction_with_typed_errors(tiny_repo):
    # each of these used to pass silently or fail later (first image) with a TypeError
    with pytest.raises(InvalidInputError, match="unknown detector"):
        Recognizer(tiny_repo, detector="retinaface")
    with pytest.raises(InvalidInputError, match="accepted options: .*min_score"):
        Recognizer(tiny_repo, detector="yunet", detector_options={"threshold": 0.5})
    with pytest.raises(InvalidInputError, match="not a Detector"):
        Recognizer(tiny_repo, detector=object())
    with pytest.raises(InvalidInputError, match="accepted options: .*intra_op_num_threads"):
        Recognizer(tiny_repo, backend_options={"threads": 2})
    # a revision only pins Hub repos: a local model must not look pinned
    with pytest.raises(InvalidInputError, match="revision"):
        Recognizer(tiny_repo, revision="v1.0")
    with pytest.raises(InvalidInputError, match="bundled model"):
        Recognizer(revision="v1.0")
    with pytest.raises(ModelNotFoundError, match="empty"):
        Recognizer("")
    # and good options still go through
    rec = Recognizer(
        tiny_repo,
        detector="mtcnn",
        detector_options={"min_face": 30, "threads": 1},
        backend_options={"intra_op_num_threads": 1},
    )
    assert rec.detector.__class__.__name__ == "MtcnnDetector" and rec.detector.min_face == 30


def test_probability_columns_are_always_the_probabilities_whose_argmax_is_the_label(tiny_repo, face_crops):
    """Issue 25, item 3: image CSV/DataFrame cells p_Anger..p_Sadness were empty wherever the negative
    network did not run, while face.probabilities held numbers and video tables were filled."""
    import csv
    import io

    negatives = ("Anger", "Disgust", "Fear", "Sadness")
    batch = Recognizer(tiny_repo).predict_faces(face_crops)
    ran = [p.fine_probabilities["Negative"] is not None for p in batch]
    assert not all(ran)  # some crops never reach the negative network
    rows = list(csv.DictReader(io.StringIO(batch.to_csv())))
    for p, r, did in zip(batch, rows, ran):
        assert p.unrefined == (() if did else negatives)
        if not did:  # an even share of the coarse 'Negative' probability, not four answers
            assert len({p.probabilities[k] for k in negatives}) == 1
        cells = {k: float(r[f"p_{k}"]) for k in p.probabilities}
        assert cells == pytest.approx(p.probabilities, abs=1e-6)
    # under the soft rule (the bundled model's) the label is the argmax of those very numbers
    soft = Recognizer(tiny_repo, rule="soft").predict_faces(face_crops)
    for p, r in zip(soft, csv.DictReader(io.StringIO(soft.to_csv()))):
        cells = {k: float(r[f"p_{k}"]) for k in p.probabilities}
        assert max(cells, key=cells.get) == p.label
    assert all(p.unrefined == () for p in Recognizer(tiny_repo, fine_policy="always").predict_faces(face_crops))
    assert batch.to_dataframe()["p_Anger"].notna().all()


@pytest.mark.parametrize("size", [(4000, 3000), (6000, 4000)])
def test_a_face_in_a_large_photo_file_is_found_as_in_its_pixels(video_recognizer, media, tmp_path, size):
    """Issue 25, item 2b: single_face.jpg's face pasted into a grey 12-megapixel JPEG was found in the
    array but not in the file (decoded at 1/2, where MTCNN's 100-pixel cap on its smallest face no
    longer shrinks with the image and the 190-pixel face fell under it)."""
    import cv2

    photo = cv2.imread(str(media("single_face.jpg")))
    (face,) = video_recognizer.predict_image(photo).faces
    x0, y0, x1, y1 = (int(v) for v in face.box)
    pad = (x1 - x0) // 2
    crop = photo[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad]
    canvas = np.full((size[1], size[0], 3), 128, np.uint8)
    canvas[1000 : 1000 + crop.shape[0], 1500 : 1500 + crop.shape[1]] = crop
    path = tmp_path / "large.jpg"
    cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 95])
    from_file = video_recognizer.predict_image(path)
    from_pixels = video_recognizer.predict_image(cv2.imread(str(path)))
    assert len(from_pixels.faces) == len(from_file.faces) == 1
    assert np.allclose(from_file.faces[0].box, from_pixels.faces[0].box, atol=4)
    assert from_file.faces[0].prediction.label == from_pixels.faces[0].prediction.label


# ---- one return type per concept (issue 22 item 2); the old spellings warn for one release ----------
def test_predict_faces_of_one_crop_still_answers_the_old_attributes_with_a_warning(rec, face_crops):
    single = rec.predict_faces(face_crops[0])
    with pytest.warns(DeprecationWarning, match=r"result\[0\]\.label"):
        assert single.label == single[0].label
    with pytest.warns(DeprecationWarning, match="coarse_probabilities"):
        assert single.coarse_scores == single[0].coarse_probabilities
    with pytest.raises(AttributeError):  # a real batch never pretends to be one prediction
        _ = rec.predict_faces(face_crops[:2]).label
    with pytest.raises(AttributeError):
        _ = single.no_such_attribute


def test_predict_face_takes_exactly_one_crop(rec, face_crops):
    with pytest.raises(InvalidInputError, match="predict_faces"):
        rec.predict_face(face_crops[:3])
    with pytest.raises(InvalidInputError):
        rec.predict_face([face_crops[0]])


def test_one_image_one_result_and_predict_images_for_many(video_recognizer, media):
    from cfcsp_sdk import DetectedFace, ImageResult

    paths = [media("single_face.jpg"), media("multi_face.jpg")]
    many = video_recognizer.predict_images(paths)
    one_by_one = [video_recognizer.predict_image(p) for p in paths]
    assert all(isinstance(r, ImageResult) for r in many) and len(many) == 2
    assert [r.to_dict() for r in many] == [r.to_dict() for r in one_by_one]
    assert video_recognizer.predict_images(iter(paths))[1].to_dict() == many[1].to_dict()  # any iterable
    assert all(isinstance(f, DetectedFace) for f in many[1].faces) and len(many[1].faces) > 1
    with pytest.warns(DeprecationWarning, match=r"predict_images\(images\)"):
        old = video_recognizer.predict_image(tuple(paths))
    assert [r.to_dict() for r in old] == [r.to_dict() for r in many]
    with pytest.raises(InvalidInputError, match="predict_image"):
        video_recognizer.predict_images(paths[0])


def test_image_records_are_the_flat_rows_and_faces_the_typed_ones(video_recognizer, media):
    result = video_recognizer.predict_image(media("multi_face.jpg"))
    records = result.to_records()
    assert [r["face"] for r in records] == list(range(len(result.faces)))
    for record, face in zip(records, result.faces):
        assert record["detection_score"] == face.detection_score
        assert (record["x1"], record["y1"], record["x2"], record["y2"]) == face.box
        assert record["label"] == face.label and record[f"p_{face.label}"] == face.probabilities[face.label]
    assert set(records[0]) == set(result.columns)
    with pytest.warns(DeprecationWarning, match=r"to_records\(\)"):
        assert result.rows() == records
    header, *lines = result.to_csv().splitlines()
    assert header.split(",") == result.columns and len(lines) == len(result.faces)
