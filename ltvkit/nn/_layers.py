"""Building blocks of ltvkit's deep models: MLP, categorical embeddings, shared bottom.

Every ltvkit module receives the encoded batch as two keyword arguments,
``x_num`` (float32, ``(n, n_numeric)``) and ``x_cat`` (int64, ``(n, n_categorical)``),
either of which may have zero columns. :class:`SharedBottom` turns them into the
representation ``h`` that a model's heads read. :class:`MLPBank` runs many small
independent MLPs (experts, towers, sub-distribution networks) as one batched operation
per layer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from ltvkit.nn._encoder import EncodedSpec

__all__ = ["MLP", "MLPBank", "SharedBottom", "TabularEmbedding"]


class MLP(nn.Sequential):
    """``Linear -> ReLU -> Dropout`` per hidden layer; no output layer.

    With ``hidden_units=()`` it is the identity and ``out_features == in_features``.

    Parameters
    ----------
    in_features : int
    hidden_units : sequence of int
    dropout : float, default=0.0
    activation : type of nn.Module, default=nn.ReLU

    Examples
    --------
    >>> mlp = MLP(8, (16, 4), dropout=0.1)
    >>> mlp(torch.zeros(3, 8)).shape, mlp.out_features
    (torch.Size([3, 4]), 4)
    """

    def __init__(
        self,
        in_features: int,
        hidden_units: Sequence[int],
        dropout: float = 0.0,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        layers: list[nn.Module] = []
        width = in_features
        for units in hidden_units:
            layers.append(nn.Linear(width, int(units)))
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(units)
        super().__init__(*layers)
        self.in_features = in_features
        self.out_features = width


class MLPBank(nn.Module):
    """``G`` independent MLPs with the same widths, evaluated as one batched op per layer.

    Network ``g`` is ``Linear -> ReLU -> Dropout`` per hidden layer, followed by a linear
    output layer (no activation) if ``out_features`` is given; without it the last hidden
    layer is the output, activated like :class:`MLP`. Layer ``k`` of all networks is one
    weight ``weights[k]`` of shape ``(G, in_k, out_k)`` (network ``g``'s ``nn.Linear``
    weight transposed: ``x @ weights[k][g]``) and one bias ``biases[k]`` of shape
    ``(G, out_k)``; the forward pass is one batched matrix product per layer for all
    networks together, never a Python loop over the networks (which would cost ``G``
    times the kernel launches and autograd nodes).

    The input is either shared by all networks, ``(n, in_features)``, or one input per
    network. The per-network tensors (inputs and output) are sample-major,
    ``(n, G, features)``, evaluated with ``torch.einsum``; with ``network_major=True``
    they are ``(G, n, features)``, evaluated with ``torch.baddbmm`` on a stride-0
    expanded input (for callers that reduce over the networks, which is faster along
    dim 0 on CPU). Both layouts compute the same networks; each model keeps the one its
    documented results were measured with (their float32 rounding differs).

    Every weight and bias is initialised like ``nn.Linear``'s default, uniform in
    ``+-1/sqrt(fan_in)`` (0 for the bias of a layer without inputs). Without ``seeds``
    the values come from torch's global RNG, layer by layer (weight then bias of all
    networks at once); with one seed per network, network ``g`` is drawn from its own
    ``torch.Generator`` seeded with ``seeds[g]``, so a network's initial weights depend
    on its seed only, not on ``G`` or on its position. Subclasses may reparameterise the
    weights by overriding :meth:`layer_weight` (and :meth:`reset_parameters`).

    Parameters
    ----------
    n_networks : int
        ``G``, at least 1.
    in_features : int
    hidden_units : sequence of int
        Hidden widths, shared by all networks.
    out_features : int or None, default=None
        Width of a linear output layer. ``None``: no output layer, ``hidden_units``
        (then at least one) ends with an activated layer.
    dropout : float, default=0.0
        Dropout after every ReLU.
    seeds : sequence of int or None, default=None
        One initialisation seed per network; ``None``: the global RNG.
    network_major : bool, default=False
        Layout of the per-network input and of the output: ``(G, n, ·)`` instead of
        ``(n, G, ·)``.

    Attributes
    ----------
    weights, biases : nn.ParameterList
        ``(G, in_k, out_k)`` and ``(G, out_k)`` per layer.
    out_features : int
        Output width of every network.

    Examples
    --------
    >>> bank = MLPBank(4, 8, (16,), 3)  # 4 networks 8 -> 16 -> ReLU -> 3
    >>> bank(torch.zeros(5, 8)).shape  # the same input for every network
    torch.Size([5, 4, 3])
    >>> bank(torch.zeros(5, 4, 8)).shape  # one input per network
    torch.Size([5, 4, 3])
    >>> experts = MLPBank(3, 8, (16, 4), dropout=0.1)  # no output layer, like MLP
    >>> experts(torch.zeros(5, 8)).shape, experts.out_features
    (torch.Size([5, 3, 4]), 4)
    >>> sdn = MLPBank(4, 8, (16,), 3, seeds=[0, 1, 2, 3], network_major=True)
    >>> sdn(torch.zeros(5, 8)).shape
    torch.Size([4, 5, 3])
    """

    def __init__(
        self,
        n_networks: int,
        in_features: int,
        hidden_units: Sequence[int],
        out_features: int | None = None,
        *,
        dropout: float = 0.0,
        seeds: Sequence[int] | None = None,
        network_major: bool = False,
    ) -> None:
        super().__init__()
        widths = [int(in_features), *(int(u) for u in hidden_units)]
        if out_features is not None:
            widths.append(int(out_features))
        if len(widths) < 2:
            raise ValueError("ltvkit: MLPBank needs at least one layer (hidden or output).")
        if int(n_networks) < 1:
            raise ValueError(f"ltvkit: MLPBank needs n_networks >= 1, got {n_networks!r}.")
        if seeds is not None and len(seeds) != n_networks:
            raise ValueError(
                f"ltvkit: MLPBank needs one seed per network, got {len(seeds)} for {n_networks}."
            )
        self.n_networks = int(n_networks)
        self.in_features = widths[0]
        self.out_features = widths[-1]
        self.activate_output = out_features is None
        self.network_major = bool(network_major)
        self.seeds = None if seeds is None else tuple(int(s) for s in seeds)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(widths):
            self.weights.append(nn.Parameter(torch.empty(self.n_networks, fan_in, fan_out)))
            self.biases.append(nn.Parameter(torch.empty(self.n_networks, fan_out)))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every weight and bias uniform in ``+-1/sqrt(fan_in)`` (see class docs)."""
        with torch.no_grad():
            if self.seeds is None:
                for w, b in zip(self.weights, self.biases, strict=True):
                    _linear_uniform_(w, b, None)
                return
            for g, seed in enumerate(self.seeds):
                gen = torch.Generator().manual_seed(seed)
                for w, b in zip(self.weights, self.biases, strict=True):
                    _linear_uniform_(w[g], b[g], gen)

    def layer_weight(self, k: int) -> torch.Tensor:
        """The weight layer ``k`` multiplies with, ``(G, in_k, out_k)``: ``weights[k]``."""
        return self.weights[k]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, in)`` or per-network ``(n, G, in)`` -> ``(n, G, out)``.

        With ``network_major=True``: ``(n, in)`` or ``(G, n, in)`` -> ``(G, n, out)``.
        """
        last = len(self.weights) - 1
        if self.network_major:
            # a stride-0 expand, not a copy: every network reads the same rows
            z = x if x.dim() == 3 else x.unsqueeze(0).expand(self.n_networks, *x.shape)
            for k, b in enumerate(self.biases):
                z = torch.baddbmm(b.unsqueeze(1), z, self.layer_weight(k))
                if k < last or self.activate_output:
                    z = self.dropout(torch.relu_(z))  # in place: baddbmm does not keep z
            return z
        z = x
        for k, b in enumerate(self.biases):
            # a shared input is one (n, in) x (in, G * out) product
            equation = "nd,gdh->ngh" if z.dim() == 2 else "ngd,gdh->ngh"
            z = torch.einsum(equation, z, self.layer_weight(k)) + b
            if k < last or self.activate_output:
                z = self.dropout(torch.relu(z))
        return z

    def extra_repr(self) -> str:
        widths = [self.in_features, *(w.shape[2] for w in self.weights)]
        return (
            f"n_networks={self.n_networks}, widths={widths}, "
            f"activate_output={self.activate_output}, network_major={self.network_major}"
        )


def _linear_uniform_(
    weight: torch.Tensor, bias: torch.Tensor, generator: torch.Generator | None
) -> None:
    """``nn.Linear``'s default initialisation of a ``(..., fan_in, fan_out)`` weight."""
    fan_in = weight.shape[-2]
    bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
    weight.uniform_(-bound, bound, generator=generator)
    bias.uniform_(-bound, bound, generator=generator)


class TabularEmbedding(nn.Module):
    """One ``nn.Embedding`` per categorical column, outputs concatenated.

    Row 0 of every table is the shared "other" slot (missing, unseen, rare). It is
    initialised to zeros, so a category that never occurred in training (slot 0 never
    trained) contributes a neutral vector instead of random noise.

    Examples
    --------
    >>> emb = TabularEmbedding(cardinalities=(3, 10), dims=(2, 5))
    >>> emb(torch.tensor([[0, 9], [2, 1]])).shape, emb.out_features
    (torch.Size([2, 7]), 7)
    """

    def __init__(self, cardinalities: Sequence[int], dims: Sequence[int]) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(
            nn.Embedding(int(card), int(dim))
            for card, dim in zip(cardinalities, dims, strict=True)
        )
        with torch.no_grad():
            for emb in self.embeddings:
                emb.weight[0].zero_()
        self.out_features = int(sum(dims))

    def forward(self, x_cat: torch.Tensor) -> torch.Tensor:
        if not len(self.embeddings):
            return x_cat.new_zeros((x_cat.shape[0], 0), dtype=torch.get_default_dtype())
        return torch.cat([emb(x_cat[:, j]) for j, emb in enumerate(self.embeddings)], dim=1)


class SharedBottom(nn.Module):
    """Embeddings + numeric block -> MLP: the representation ``h`` shared by the heads.

    Parameters
    ----------
    spec : EncodedSpec
        From the fitted encoder (``estimator.encoder_.spec_``).
    hidden_units : sequence of int
        MLP widths; ``()`` gives ``h = [x_num, embeddings]`` (a linear model on top).
    dropout : float, default=0.0

    Attributes
    ----------
    out_features : int
        Width of ``h``.

    Examples
    --------
    >>> spec = EncodedSpec(2, (3,), (2,), ("a", "b"), ("c",))
    >>> bottom = SharedBottom(spec, hidden_units=(8,))
    >>> bottom(torch.zeros(4, 2), torch.zeros(4, 1, dtype=torch.long)).shape
    torch.Size([4, 8])
    """

    def __init__(
        self, spec: EncodedSpec, hidden_units: Sequence[int], dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.embedding = TabularEmbedding(spec.cardinalities, spec.embedding_dims)
        self.mlp = MLP(spec.n_numeric + self.embedding.out_features, hidden_units, dropout)
        self.out_features = self.mlp.out_features

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        if len(self.embedding.embeddings):
            x_num = torch.cat([x_num, self.embedding(x_cat)], dim=1)
        return self.mlp(x_num)
