"""Building blocks of ltvkit's deep models: MLP, categorical embeddings, shared bottom.

Every ltvkit module receives the encoded batch as two keyword arguments,
``x_num`` (float32, ``(n, n_numeric)``) and ``x_cat`` (int64, ``(n, n_categorical)``),
either of which may have zero columns. :class:`SharedBottom` turns them into the
representation ``h`` that a model's heads read.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ltvkit.nn._encoder import EncodedSpec

__all__ = ["MLP", "SharedBottom", "TabularEmbedding"]


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
            return x_cat.new_zeros((x_cat.shape[0], 0), dtype=torch.float32)
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
