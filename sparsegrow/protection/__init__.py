"""Protection math for old knowledge, plain PyTorch (no Avalanche): importance scores, frozen
masks with gradient gating and exact restoring, and GPM-style subspace protection."""

from sparsegrow.protection.importance import SCORES, importance_scores
from sparsegrow.protection.masks import ParamLocks, extend_mask, topk_gate_
from sparsegrow.protection.subspace import SubspaceMemory, update_basis

__all__ = ["SCORES", "importance_scores", "ParamLocks", "extend_mask", "topk_gate_",
           "SubspaceMemory", "update_basis"]
