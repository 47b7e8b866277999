"""nasnet-app: Neural Architecture Search and NASNet-A cells for Keras 3."""

import re

from setuptools import find_packages, setup

# The repository keeps the design's top-level folders; they install under the
# one `nasnet_app` namespace, never as generic top-level modules.
SUBPACKAGES = {
    "nasnet_app.zoo": "zoo",
    "nasnet_app.search": "search",
    "nasnet_app.evaluate": "evaluate",
    "nasnet_app.checkpoints": "checkpoints",
}


def _packages():
    packages = ["nasnet_app"] + [f"nasnet_app.{p}" for p in find_packages("nasnet_app")]
    package_dir = {"nasnet_app": "nasnet_app"}
    for name, folder in SUBPACKAGES.items():
        packages.append(name)
        package_dir[name] = folder
        for sub in find_packages(folder):
            packages.append(f"{name}.{sub}")
            package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()
# The one version number lives in nasnet_app/__init__.py (read as text: no import at build time).
VERSION = re.search(
    r'^__version__ = "([^"]+)"', open("nasnet_app/__init__.py", encoding="utf-8").read(), re.M
).group(1)

setup(
    name="nasnet-app",
    version=VERSION,
    description="Neural Architecture Search and NASNet-A networks for Keras 3 / TensorFlow",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={
        "nasnet_app.assets": ["*.json", "*.tar", "*.csv.gz"],
        "nasnet_app.checkpoints": ["*.json", "*.keras", "*.weights.h5", "*.png"],
        "nasnet_app.detection": ["*.json"],
    },
    include_package_data=True,
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.10,<4",
        "tensorflow-datasets>=4.9",
        "importlib-resources",
        "tensorflow-hub>=0.16",
        "tf-keras>=2.21,<2.22",
        "matplotlib>=3.8",
        "h5py>=3.10",
        "pillow>=10",
        "numpy",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3",
            "ruff>=0.6",
            "psutil",
            "ray>=2.40",
            "pycocotools>=2.0.8",
            "ai-edge-litert>=2.0",
        ],
        # COCO evaluation of detectors (`nasnet-app evaluate-detection`).
        "coco": ["pycocotools>=2.0.8"],
        "distributed": ["ray[default]>=2.40"],
        # LiteRT interpreter for .tflite exports (`nasnet_app.zoo.tflite`).
        "mobile": ["ai-edge-litert>=2.0"],
    },
    entry_points={"console_scripts": ["nasnet-app=nasnet_app.cli:main"]},
)
