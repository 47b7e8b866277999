"""nasnet-app: NASNet networks built from genotypes, a model zoo and cell search."""

from nasnet_app.genotype import NASNET_A, OPS, Block, Cell, Genotype
from nasnet_app.model import DropPathSchedule, NASNet
from nasnet_app.applications import NASNetCIFAR, NASNetLarge, NASNetMobile
from nasnet_app import weights

__version__ = "0.1.0"
