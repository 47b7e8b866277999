"""nasnet-app: NASNet networks built from genotypes, a model zoo and cell search."""

from nasnet_app import weights
from nasnet_app.applications import NASNetCIFAR, NASNetLarge, NASNetMobile
from nasnet_app.classifier import ImageClassifier
from nasnet_app.finetune import finetune
from nasnet_app.genotype import NASNET_A, OPS, Block, Cell, Genotype
from nasnet_app.model import DropPathSchedule, NASNet

__version__ = "0.1.0"

__all__ = [
    "NASNET_A",
    "OPS",
    "Block",
    "Cell",
    "DropPathSchedule",
    "Genotype",
    "ImageClassifier",
    "NASNet",
    "NASNetCIFAR",
    "NASNetLarge",
    "NASNetMobile",
    "finetune",
    "weights",
]
