"""Omniglot few-shot classification (the paper's Section 5.2, Table 1).

MAML meta-trains ``Conv4`` on N-way K-shot episodes drawn from 1,100 meta-training
characters (each rotated by 0/90/180/270°, a rotation being a new class), validates on
100 held-out characters and is tested on the remaining 423.

The pre-training baseline trains one ``Conv4`` to classify every meta-training class at
once (1,100 characters × 4 rotations); for a test task its head is replaced by a zero
N-way head and the whole network is fine-tuned on the support set with the same α and
steps as MAML.

Training and its validation only: the test tasks, the shipped checkpoints and Table 1
are in ``mamllib.paper.omniglot``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mamllib import distributed
from mamllib.batch import TaskBatch
from mamllib.checks import check_int, check_steps
from mamllib.data import DataNotFoundError, download_omniglot, find_omniglot, load_omniglot
from mamllib.evaluate import accuracy, adaptation_curve, summarize_curve
from mamllib.experiments.common import Experiment, MetaTrainingConfig, resolve_device
from mamllib.fast.graph import MetaStep, graph_blockers, refill, use_graph
from mamllib.maml import MAML, resolve_path
from mamllib.models import Conv4
from mamllib.tasks.omniglot import OmniglotTasks, split_characters

SPLITS = ("random", "lake")
ROTATIONS = 4
DRAWINGS = 20  # of every character, by 20 different people
# Characters per split, known without the data: meta-training (validation included) and
# test. "random": the paper's 1,200 of all 1,623 and the other 423; "lake": the 964
# background characters and the 659 evaluation ones.
SPLIT_SIZES = {"random": (1200, 423), "lake": (964, 659)}


@dataclass(frozen=True)
class OmniglotConfig(MetaTrainingConfig):
    """One Omniglot experiment; the defaults are the paper's 5-way 1-shot settings.

    The fields of ``MetaTrainingConfig`` (here α = 0.4, one inner step, meta-batch 32,
    60,000 iterations; the paper's 20-way settings are α = 0.1, 5 steps, meta-batch 16),
    and:

    Attributes:
        n_way: N, classes per task: at most the characters of the smallest part of the
            split (``split_sizes``: 100 validation characters by default).
        k_shot: K, support images per class.
        k_query: query images per class during meta-training (the paper's code used K;
            evaluation always uses ``eval_query``).
        eval_inner_steps: inner updates at test time (paper: 3 for 5-way, 5 for 20-way).
        eval_query: query images per class in evaluation (15).
        hidden: filters per convolution.
        split: ``"random"`` (the paper: 1,200 characters irrespective of alphabet for
            meta-training, 423 for testing) or ``"lake"`` (background/evaluation sets).
        split_seed: seeds the character split (documented: 0).
        n_val: characters of the meta-training part held out for validation.
    """

    inner_lr: float = 0.4
    meta_batch_size: int = 32
    iterations: int = 60_000
    eval_every: int = 500
    eval_tasks: int = 100
    checkpoint_every: int = 500
    n_way: int = 5
    k_shot: int = 1
    k_query: int = 1
    eval_inner_steps: int = 3
    eval_query: int = 15
    hidden: int = 64
    split: str = "random"
    split_seed: int = 0
    n_val: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.split not in SPLITS:
            raise ValueError(f"split={self.split!r} is not one of {SPLITS}")
        for name in ("n_way", "k_shot", "k_query", "eval_query", "hidden", "n_val"):
            check_int(name, getattr(self, name), 1)
        check_int("split_seed", self.split_seed, 0)
        check_steps(self.eval_inner_steps, "eval_inner_steps")
        if self.k_shot + max(self.k_query, self.eval_query) > DRAWINGS:
            raise ValueError(
                f"--k-shot {self.k_shot} + max(--k-query {self.k_query}, --eval-query "
                f"{self.eval_query}) = {self.k_shot + max(self.k_query, self.eval_query)} "
                f"drawings per class, but each character has only {DRAWINGS}; lower them so "
                f"that the sum is at most {DRAWINGS}"
            )
        meta_train, _ = SPLIT_SIZES[self.split]
        if self.n_val >= meta_train:
            raise ValueError(
                f"--n-val {self.n_val} is too large: the {self.split!r} split has "
                f"{meta_train:,} meta-training characters, validation included, so --n-val "
                f"must be at most {meta_train - 1:,}"
            )
        sizes = split_sizes(self)
        if self.n_way > min(sizes.values()):
            raise ValueError(
                f"--n-way {self.n_way} is too large: tasks are drawn from {sizes['train']:,} "
                f"training, {sizes['val']:,} validation (--n-val) and {sizes['test']:,} test "
                f"characters (--split {self.split}), so N must be at most "
                f"{min(sizes.values()):,}"
                + {"val": " (raise --n-val for more)", "train": " (lower --n-val for more)"}.get(
                    min(sizes, key=sizes.get), ""
                )
            )


def few_shot_head(learner: MAML, n_way: int) -> MAML:
    """A pre-trained classifier turned into an N-way few-shot learner.

    The convolutional features are kept; the head is replaced by a zero-initialised
    N-way linear layer (every class equally likely before fine-tuning).
    """
    source = learner.model
    model = Conv4(n_way, hidden=source.head.in_features).to(next(source.parameters()).device)
    model.features.load_state_dict(source.features.state_dict())
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    return MAML(model, F.cross_entropy, learner.config).eval()


def accuracy_curve(
    learner: MAML,
    batch: TaskBatch,
    steps: int,
    inner_lr: float | None = None,
    *,
    progress: bool = False,
    desc: str = "adapting",
) -> Tensor:
    """``[T, steps + 1]`` query accuracy of each task after 0..steps inner updates.

    ``progress=True`` shows a bar over the tasks, labelled ``desc``.
    """
    return adaptation_curve(
        learner.model,
        learner.params,
        batch,
        F.cross_entropy,
        inner_lr=learner.inner_lr if inner_lr is None else inner_lr,
        steps=steps,
        metric_fn=accuracy,
        buffers=learner.buffer_dict,
        path=learner.config.path,
        progress=progress,
        desc=desc,
    )


class OmniglotExperiment(Experiment):
    """Learner, optimiser, data resident on the device, task streams, validation tasks."""

    name = "omniglot"
    model_name = "omniglot-conv4"
    config_cls = OmniglotConfig
    supports_distributed = True
    step: MetaStep

    def __init__(self, config: OmniglotConfig):
        self.config = config
        self.device = resolve_device(config.device)
        data = load_omniglot()
        self.splits = split_characters(
            data, config.split, seed=config.split_seed, n_val=config.n_val
        )
        if len(self.splits["train"]) != train_characters(config):
            raise RuntimeError(
                f"the {config.split!r} split does not have {train_characters(config)} training characters"
            )
        self.images = data.float_images(self.device)
        self.train_tasks = OmniglotTasks(self.images, self.splits["train"])
        self.val_tasks = OmniglotTasks(self.images, self.splits["val"])
        torch.manual_seed(config.seed)
        self.learner = self.build_learner(config, self.device)
        self.optimizer = self.learner.make_optimizer()
        self.generator = self.task_generator(self.device)
        self.inputs: tuple[Tensor, ...] | None = None  # the step's inputs, in fixed buffers
        self.use_cuda_graph(None)
        self.val_batch = self.val_tasks.sample(
            config.eval_tasks, config.n_way, config.k_shot, config.eval_query,
            generator=torch.Generator(self.device).manual_seed(10_000 + config.seed),
        )  # fmt: skip

    @staticmethod
    def build_learner(config: OmniglotConfig, device: torch.device | str = "cpu") -> MAML:
        if config.method == "pretrain":
            n_classes = ROTATIONS * train_characters(config)
            model = Conv4(n_classes, hidden=config.hidden)
        else:
            model = Conv4(config.n_way, hidden=config.hidden)
        return MAML(model, F.cross_entropy, config.maml_config()).to(device)

    def use_cuda_graph(self, requested: bool | None) -> None:
        """Capture the meta-step in a CUDA graph (``True``), run it eagerly (``False``), or
        (``None``) capture it on CUDA unless something in the config prevents it
        (``mamllib.fast.graph.graph_blockers``)."""
        c, torchrun = self.config, distributed.context().enabled
        path = resolve_path(c.path, self.learner.model, self.device)
        blockers = graph_blockers(path=path, learn_inner_lr=c.learn_inner_lr, distributed=torchrun)
        self.step = MetaStep(self.optimizer, graph=use_graph(requested, self.device, blockers))

    def train_step(self) -> Tensor | float:
        """One meta-update on a fresh meta-batch; the loss stays on the device (a 0-dim tensor;
        under torchrun the float averaged over the ranks).

        The tasks are drawn on the device, from ``generator``, and copied into fixed buffers
        (the memory a captured step reads): nothing here waits for the device.
        """
        c = self.config
        if c.method == "maml":
            batch = self.train_tasks.sample(
                self.local_meta_batch, c.n_way, c.k_shot, c.k_query, generator=self.generator
            )
            data = batch.x_support, batch.y_support, batch.x_query, batch.y_query
        else:
            data = self.pretrain_batch(self.local_meta_batch * c.n_way * (c.k_shot + c.k_query))
        self.inputs = refill(self.inputs, *data)
        if distributed.context().enabled:
            return self.meta_update(self.loss())
        return self.step(self.loss)

    def loss(self) -> Tensor:
        """The training loss on the fixed input buffers (what a captured step replays): MAML's
        meta-objective, or for pre-training the cross-entropy over all training classes."""
        if self.config.method == "maml":
            return self.learner.meta_loss(TaskBatch(*self.inputs)).loss
        x, y = self.inputs
        return F.cross_entropy(self.learner(x), y)

    def load_state(self, state: dict[str, Any], source: str) -> None:
        super().load_state(state, source)
        self.step.reset()  # Adam's state tensors were replaced: capture again, Adam prepared

    def pretrain_batch(self, size: int) -> tuple[Tensor, Tensor]:
        """``size`` images of random training characters, drawings and rotations.

        Labels are ``4 · character + rotation``: each rotation is its own class.
        """
        n = len(self.splits["train"])
        cls = torch.randint(n, (size,), generator=self.generator, device=self.device)
        drawing = torch.randint(20, (size,), generator=self.generator, device=self.device)
        rotation = torch.randint(ROTATIONS, (size,), generator=self.generator, device=self.device)
        x = self.images[self.train_tasks.class_ids[cls], drawing]  # ids on the device already
        rotated = torch.stack([torch.rot90(x, k, dims=(-2, -1)) for k in range(ROTATIONS)])
        x = rotated[rotation, torch.arange(size, device=self.device)]
        return x, ROTATIONS * cls + rotation

    def few_shot_learner(self) -> MAML:
        """What is evaluated on N-way tasks: MAML itself, or the pre-trained net with an N-way head."""
        if self.config.method == "pretrain":
            return few_shot_head(self.learner, self.config.n_way)
        return self.learner

    def evaluate(self) -> dict[str, Any]:
        curve = accuracy_curve(
            self.few_shot_learner(), self.val_batch, self.config.eval_inner_steps
        )
        return {"val_accuracy": summarize_curve(curve)["mean"]}

    @staticmethod
    def headline(metrics: dict[str, Any]) -> str:
        acc = metrics["val_accuracy"]
        return f"val accuracy {100 * acc[0]:.1f}% -> {100 * acc[-1]:.1f}% ({len(acc) - 1} steps)"


def split_sizes(config: OmniglotConfig) -> dict[str, int]:
    """Characters in the ``"train"``, ``"val"`` and ``"test"`` parts of ``config``'s split
    (no data needed)."""
    meta_train, test = SPLIT_SIZES[config.split]
    return {"train": meta_train - config.n_val, "val": config.n_val, "test": test}


def train_characters(config: OmniglotConfig) -> int:
    """How many characters the meta-training split of ``config`` holds (no data needed)."""
    return split_sizes(config)["train"]


def fetch_omniglot_data() -> None:
    """``--download``: Omniglot's two original zips into the data location, unless already there."""
    try:
        find_omniglot()
    except DataNotFoundError:
        download_omniglot()
