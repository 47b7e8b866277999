"""NASNetMobile / NASNetLarge compute keras.applications' function, given the same weights.

The weights arrive the way a user's file does: the keras.applications model
gets random values for every weight (BN statistics included) and is written in
the legacy Keras-2 HDF5 format of the official `NASNet-mobile.h5` files.
Relative error = max |ours - keras| / max |keras|.
"""

import keras
import numpy as np
import pytest

import nasnet_app
from nasnet_app.weights import WeightsError, write_legacy_h5

pytestmark = pytest.mark.slow


def randomize(model, seed=0):
    rng = np.random.RandomState(seed)
    for weight in model.weights:
        shape = tuple(weight.shape)
        if weight.name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif weight.name in ("beta", "moving_mean", "bias"):
            value = rng.normal(0.0, 0.1, shape)
        else:
            value = rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
        weight.assign(value.astype("float32"))


def relative_error(ours, reference):
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


def keras_features(model):
    """The keras.applications output without top: the ReLU before global pooling."""
    return keras.Model(model.input, model.layers[-3].output)


def check_parity(application, ours_fn, default_size, other_sizes, tmp_path):
    reference = application(weights=None, classifier_activation=None)
    randomize(reference)
    path = str(tmp_path / "weights.h5")
    write_legacy_h5(reference, path)
    with_top = ours_fn(weights=path, input_shape=(None, None, 3), classifier_activation=None)
    no_top = ours_fn(weights=path, input_shape=(None, None, 3), include_top=False)
    rng = np.random.RandomState(1)
    for size in (default_size, *other_sizes):
        if size != default_size:
            reference = application(
                weights=path, input_shape=(size, size, 3), classifier_activation=None
            )
        x = rng.uniform(-1, 1, (1, size, size, 3)).astype("float32")
        logits = reference.predict(x, verbose=0)
        features = keras_features(reference).predict(x, verbose=0)
        assert relative_error(with_top.predict(x, verbose=0), logits) <= 1e-5, size
        assert relative_error(no_top.predict(x, verbose=0), features) <= 1e-5, size


def test_mobile_matches_keras_applications(tmp_path):
    check_parity(keras.applications.NASNetMobile, nasnet_app.NASNetMobile, 224, (97, 160), tmp_path)


def test_large_matches_keras_applications(tmp_path):
    check_parity(keras.applications.NASNetLarge, nasnet_app.NASNetLarge, 331, (225, 64), tmp_path)


def test_keras_applications_reads_the_written_file(tmp_path):
    reference = keras.applications.NASNetMobile(weights=None)
    randomize(reference, seed=3)
    path = str(tmp_path / "w.h5")
    write_legacy_h5(reference, path)
    again = keras.applications.NASNetMobile(weights=path)
    for a, b in zip(reference.weights, again.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_file_of_another_size_names_the_mismatch(tmp_path):
    path = str(tmp_path / "mobile.h5")
    write_legacy_h5(keras.applications.NASNetMobile(weights=None), path)
    with pytest.raises(WeightsError, match="mobile.h5.*(missing|another shape|unexpected)"):
        nasnet_app.NASNetLarge(weights=path)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.h5"
    write_legacy_h5(keras.applications.NASNetMobile(weights=None), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match="broken.h5"):
        nasnet_app.NASNetMobile(weights=str(path))
