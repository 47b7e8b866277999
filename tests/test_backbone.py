"""NASNetBackbone and NASNetImageClassifier: the keras-hub roles."""

import keras
import numpy as np
import pytest

import nasnet_app
from nasnet_app.backbone import plan_cells
from tests.helpers import TINY_BACKBONE, random_images, run_backbone_test, run_task_test


def test_backbone_is_functional_with_named_features(tmp_path):
    backbone = run_backbone_test(
        nasnet_app.NASNetBackbone, TINY_BACKBONE, random_images(), (2, 8, 8, 48), tmp_path
    )
    assert list(backbone.feature_outputs)[:3] == ["Stem", "Cell_0", "Reduction_Cell_0"]
    assert tuple(backbone.input_shape) == (None, 32, 32, 3)


def test_imagenet_stem_backbone_has_slim_endpoints():
    backbone = run_backbone_test(
        nasnet_app.NASNetBackbone,
        {
            **TINY_BACKBONE,
            "stem": "imagenet",
            "penultimate_filters": 96,
            "stem_filters": 8,
            "input_shape": (None, None, 3),
        },  # fmt: skip
        random_images(1, 64),
        (1, 2, 2, 96),
    )
    assert list(backbone.feature_outputs)[:2] == ["cell_stem_0", "Stem"]


def test_feature_extraction_like_keras_applications():
    base = nasnet_app.NASNetMobile(include_top=False, input_shape=(96, 96, 3))
    features = keras.Model(base.inputs, base.backbone.get_layer("cell_7").output)
    assert features.predict(random_images(1, 96), verbose=0).shape == (1, 6, 6, 528)


def test_task_fits_with_aux_head_and_round_trips(tmp_path):
    backbone = nasnet_app.NASNetBackbone(**TINY_BACKBONE)
    task = nasnet_app.NASNetImageClassifier(
        backbone, num_classes=4, aux_head=True, class_names=list("abcd")
    )
    run_task_test(task, random_images(4), np.arange(4), tmp_path)


def test_backbone_from_preset_matches_the_published_architecture():
    assert nasnet_app.NASNetBackbone.from_preset("mobile").count_params() == 4_269_716


def test_plan_reads_as_keras_applications_wiring():
    # Output index of plan i is i + 2 (0: none, 1: the stem). With skip_reduction
    # (NASNet-A Large) the cell after a reduction reads the input of the cell
    # before the reduction, as keras.applications' `p = p0 if not skip_reduction else p`.
    for skip, expected in ((True, "cell_0"), (False, "cell_1")):
        plans = plan_cells("nasnet_a", 2, 96, "imagenet", 8, skip_reduction=skip)
        names = [p.name for p in plans]
        assert names[:3] == ["stem_cell_0", "stem_cell_1", "cell_0"]
        assert plans[names.index("cell_2")].prev_index == names.index(expected) + 2


def test_task_rejects_what_it_cannot_use():
    backbone = nasnet_app.NASNetBackbone(**TINY_BACKBONE)
    with pytest.raises(ValueError, match="`class_names`"):
        nasnet_app.NASNetImageClassifier(backbone, num_classes=3, class_names=["a"])
    with pytest.raises(ValueError, match="`backbone`"):
        nasnet_app.NASNetImageClassifier("mobile")


def test_legacy_keras_file_loads_and_upgrades(tmp_path):
    from tests.reference_data import LOCAL_DATA

    path = f"{LOCAL_DATA}/legacy_nasnet_v0_1.keras"
    model = nasnet_app.load_model(path)
    assert isinstance(model, nasnet_app.NASNet)
    legacy = keras.models.load_model(path)
    x = random_images(2)
    np.testing.assert_allclose(model.predict(x, verbose=0), legacy.predict(x, verbose=0), atol=1e-6)
