"""Files bundled with the package, found by name.

* `cifar10_subset.tar`: 200 train and 100 test CIFAR-10 JPEGs per class (the
  demo set; `tools/make_cifar10_subset.py` regenerates it);
* `imagenet_class_index.json`: the 1000 ImageNet classes in keras.applications order;
* `nasbench201_cifar10.csv.gz`: the NAS-Bench-201 CIFAR-10 table of the demo search.
"""

import os

ASSETS_DIR = os.path.dirname(os.path.abspath(__file__))


def asset_path(name, must_exist=True):
    """The path of the bundled file `name`, e.g. `asset_path("imagenet_class_index.json")`.

    Raises `FileNotFoundError` naming it when it is missing, unless
    `must_exist=False` (for a file about to be written).
    """
    path = os.path.join(ASSETS_DIR, name)
    if must_exist and not os.path.isfile(path):
        raise FileNotFoundError(
            f"The bundled file {name!r} is missing from {ASSETS_DIR!r}; reinstall nasnet-app."
        )
    return path
