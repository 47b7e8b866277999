"""Cell search (`nasnet_app.search`): spaces, controller, algorithms, evaluators, `CellSearch`.

Example:

>>> from nasnet_app.search import CellSearch, NASBench201Space, RandomSearch, TabularEvaluator
>>> space = NASBench201Space()
>>> search = CellSearch(space, RandomSearch(space, seed=0),
...                     TabularEvaluator("../shared/data/nasbench201/cifar10.csv"))  # doctest: +SKIP
>>> search.search(max_trials=20, verbose=0).best_trial.reward  # doctest: +SKIP
"""

from nasnet_app.search.algorithms import (
    PAPER_SETTINGS,
    PPO,
    RandomSearch,
    RegularizedEvolution,
    Reinforce,
    SearchSpaceExhausted,
    budget_settings,
    build_algorithm,
    get_algorithm,
    load_state,
    save_state,
)
from nasnet_app.search.base import Evaluator, Objective, SearchAlgorithm, SearchSpace, Trial
from nasnet_app.search.callbacks import (
    BestCellExporter,
    ControllerCheckpoint,
    CSVLogger,
    EarlyStoppingOnPlateau,
    JSONLLogger,
    ProgressPlot,
    SearchCallback,
    TensorBoard,
)
from nasnet_app.search.cell_search import CellSearch, SearchHistory
from nasnet_app.search.controller import Controller, SeenSequences
from nasnet_app.search.evaluators import ChildTrainer
from nasnet_app.search.executors import InProcessExecutor, LocalProcessExecutor, RayExecutor
from nasnet_app.search.macro import build_macro_model
from nasnet_app.search.spaces import (
    MacroArchitecture,
    MacroLayer,
    NASBench201Space,
    NASMacroSpace,
    NASNetCellSpace,
    space_from_config,
)
from nasnet_app.search.supernets import (
    NASBench201Supernet,
    NASNetMicroSupernet,
    build_nasbench201_child,
    build_supernet,
)
from nasnet_app.search.tabular import TabularEvaluator
from nasnet_app.search.weight_sharing import (
    ENAS_SETTINGS,
    WeightSharingSearch,
    demo_weight_sharing,
    enas_nasnet_space,
)
