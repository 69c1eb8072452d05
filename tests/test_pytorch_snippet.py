"""A typical PyTorch training script runs on minigrad with only its imports changed.

SNIPPET is written for PyTorch (nn.Sequential MLP, batching by hand with randperm,
CrossEntropyLoss, AdamW, a warmup-then-cosine lr_scheduler, gradient clipping,
torch.save / torch.load of model and optimizer state, then resuming). The test swaps
its three import lines for minigrad's and runs it; where PyTorch is installed (it is never
a dependency) the same text also runs on PyTorch, unchanged, to show it is real torch code.
"""
import pytest

SNIPPET = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
X = torch.randn(512, 2)
y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()        # three classes: 0, 1 or 2 positive

model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(),
                      nn.Linear(32, 3))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
epochs, batch_size = 8, 64
steps = epochs * (len(X) // batch_size)
warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=10)
decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps - 10)
scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, decay], milestones=[10])

for epoch in range(epochs):
    model.train()
    order = torch.randperm(len(X))
    for start in range(0, len(X), batch_size):
        batch = order[start:start + batch_size]
        logits = model(X[batch])
        loss = loss_fn(logits, y[batch])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()

model.eval()
with torch.no_grad():
    accuracy = (model(X).argmax(dim=1) == y).float().mean().item()
    final_loss = F.cross_entropy(model(X), y).item()

torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": epoch}, PATH)
checkpoint = torch.load(PATH)
restored = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(),
                         nn.Linear(32, 3))
restored.load_state_dict(checkpoint["model"])
restored_optimizer = torch.optim.AdamW(restored.parameters(), lr=1e-2, weight_decay=0.01)
restored_optimizer.load_state_dict(checkpoint["optimizer"])
with torch.no_grad():
    same = torch.allclose(restored(X), model(X))
resumed_epoch = checkpoint["epoch"] + 1
'''

TORCH_IMPORTS = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
MINIGRAD_IMPORTS = ("import minigrad as torch\nimport minigrad.nn as nn\n"
                    "import minigrad.nn.functional as F\n")


def run(source, tmp_path):
    scope = {"PATH": str(tmp_path / "checkpoint.npz")}
    exec(compile(source, "pytorch_snippet", "exec"), scope)  # noqa: S102 - our own text
    return scope


def test_the_snippet_is_torch_code_with_three_import_lines():
    assert SNIPPET.count("import ") == 3 and TORCH_IMPORTS in SNIPPET


def test_a_pytorch_training_snippet_runs_with_only_the_imports_changed(tmp_path):
    scope = run(SNIPPET.replace(TORCH_IMPORTS, MINIGRAD_IMPORTS), tmp_path)
    assert scope["accuracy"] > 0.9, scope["accuracy"]  # the classes are separable
    assert scope["final_loss"] < 0.4, scope["final_loss"]
    assert scope["same"] and scope["resumed_epoch"] == 8
    groups = scope["restored_optimizer"].param_groups
    assert groups[0]["lr"] == scope["optimizer"].param_groups[0]["lr"]


def test_the_same_snippet_runs_on_pytorch(tmp_path):
    pytest.importorskip("torch")
    scope = run(SNIPPET.replace("PATH)", "PATH.replace('.npz', '.pt'))"), tmp_path)
    assert scope["accuracy"] > 0.9
