"""The notebooks: each runs top to bottom in a real Jupyter kernel and draws its pictures.

A code cell tagged "graph" (a computation graph) or "plot" (a matplotlib figure) must produce
an image. Notebooks run from a temporary copy, so the repository's files are never rewritten.
"""

import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PICTURE_TAGS = {"graph", "plot"}
IMAGE_TYPES = ("image/svg+xml", "image/png")
# Figures a notebook's text quotes from its own output. The saved outputs and a fresh run must
# both print each one, so the prose cannot drift away from the numbers (all are seeded).
KEY_FIGURES = {
    "01_value_and_chain_rule": [
        "{'a': 6.0, 'b': -4.0, 'c': -2.0, 'f': 4.0}",
        "a:  +6.000000  +6.000000      +6.000000",
    ],
    "02_drawing_graphs": [
        "weights' gradients, + and * nodes: [1.5728954659318548, 0.0, -0.7864477329659274]",
        "weights' gradients, one dot node:  [1.5728954659318548, 0.0, -0.7864477329659274]",
    ],
    "03_training_moons": [
        "loss of the untrained model: 1.5227",
        "final loss 0.0223, accuracy 100%",
    ],
    "04_gradient_descent_variants": [
        " 1   7.0000    0.70000    0.04900    7.00000   49.00000   1.9000000      1.9000000",
        " 1   7.0000    0.49000   0.70000   0.10000   1.9000000      1.9000000",
        "loss over the last 10 epochs 0.0113 to 0.0364",
        "first epoch with loss 0: 75",
        "first epoch with loss 0: 63",
    ],
    "05_higher_order_and_jit": [
        "step 2: (x, y) = (+0.763115, -3.175034)  f = 1.412e+03",
        "step 3: (x, y) = (+0.763430, +0.582825)  f = 5.597e-02",
        "step 4: (x, y) = (+0.999995, +0.944027)  f = 3.132e-01",
        "135 scalar equations, forward and backward",
        "37 lines of matrix code:",
    ],
    "06_batchnorm_and_dropout": [
        "with BatchNorm1d, momentum 0.1 : final loss 1.044, accuracy 64%",
        "with BatchNorm1d, momentum 0.5 : final loss 0.015, accuracy 100%",
        "largest difference between the two batch-norm networks' weights: 0.0",
        "momentum 0.1 network, estimates redone: loss 0.005, accuracy 100%",
    ],
    "07_backprop_through_time": ["epoch   0: loss 8.0618", "epoch 199: loss 0.0034"],
    "08_vanishing_gradients_and_dead_relus": [
        "epoch 15: d loss / d output bias = mean(sigmoid(score) - label) = +1.1e-02",
        "epoch 16: d loss / d output bias = mean(sigmoid(score) - label) = -2.0e-03",
        "sigmoid: spread (std) of the first epoch's gradients, layer 1 3.3e-05, layer 7 4.9e-02: "
        "1466x",
        "relu: spread (std) of the first epoch's gradients, layer 1 6.3e-02, layer 7 1.1e-01: 2x",
    ],
    "09_backward_stepper": [
        "naive:   a.grad = 7, x.grad = 48",
        "engine:  a.grad = 7, x.grad = 21",
        "10       21                               59047                   20",
    ],
    "10_playground": [
        "hidden 2: epoch 60: loss 0.5091 (test 0.4789), accuracy 76% (test 73%)",
        "hidden 8: epoch 60: loss 0.1121 (test 0.1195), accuracy 99% (test 98%)",
    ],
    "11_optimizer_paths": [
        "step 2: (+0.204434, -2.698603)  f = 7.516e+02",
        "step 4: (+0.999667, +0.369240)  f = 3.970e+01",
        "Adam, lr 0.05            ends at (+1.0000, +1.0000)",
    ],
    "12_digits": [
        "1347 training images, 450 test images",
        "training accuracy 99.9%, test accuracy 97.1%",
    ],
    "13_forward_mode_and_exercises": [
        "Hint: yours is off by exactly 1: a term of this gradient that does not depend on the "
        "inputs' values is missing or extra.",
    ],
    "14_losses": [
        "   -6.0  14.0000   0.9975   1.0000",
        "    6.0  10.0000   0.0025   0.0000",
        "MSE                    accuracy on the 80 blob points 91.2%",
        "binary cross-entropy   accuracy on the 80 blob points 98.8%, smallest margin of the far "
        "points 56.5",
        "hinge                  accuracy on the 80 blob points 98.8%, smallest margin of the far "
        "points 27.0",
    ],
    "15_generalisation": [
        "after 50 epochs the two models' parameters differ by at most 0.0e+00",
        "     0          0.017            1.088     0.390 ( 17)          80%      15.33",
        "   0.1          0.420            0.463     0.419 ( 67)          80%       4.76",
        "Dropout(0.5): final validation loss 0.579, lowest 0.406 at epoch 52",
        "stopped after epoch 37; best epoch 17, validation loss 0.390",
        "layer 8 beyond +-0.99: 61%",
        "He's gradients over Xavier's, layer by layer: 15x to 79x",
        "tanh, std 1 (too large)               0.696    0.009",
    ],
    "16_gpt_from_scalars": [
        "jit=False: mean loss of the 4 steps 3.115705257723",
        "jit=True : mean loss of the 4 steps 3.115705257723",
        "loss    : ours 2.225953, PyTorch 2.225953,",
        "val_loss: ours 2.235189, PyTorch 2.235189,",
        "head 2: rows sum to 1.000000..1.000000; mean weight on its own position 0.32, on the "
        "one before 0.41",
        "head 3: rows sum to 1.000000..1.000000; mean weight on its own position 0.33, on the "
        "one before 0.36",
        "RNN                  : |d readout / d x_t| at the last step 2.7e-01, at step 1 3.7e-22, "
        "ratio 1e-21",
        "GRU, update gate +3  : |d readout / d x_t| at the last step 6.9e-03, at step 1 1.5e-03, "
        "ratio 2e-01",
        "LSTM, forget gate +3 : |d readout / d x_t| at the last step 3.7e-02, at step 1 6.6e-04, "
        "ratio 2e-02",
        "GRU, PyTorch's init  : |d readout / d x_t| at the last step 7.9e-02, at step 1 9.1e-09, "
        "ratio 1e-07",
        "LSTM, PyTorch's init : |d readout / d x_t| at the last step 5.7e-02, at step 1 2.1e-15, "
        "ratio 4e-14",
        "RNN                  : held-out accuracy 50% after 16 epochs",
        "GRU, update gate +3  : held-out accuracy 100% after 16 epochs",
        "LSTM, forget gate +3 : held-out accuracy 100% after 16 epochs",
        "GRU, update gate +3  : after training, |d readout / d x_1| 1.5e-01, median over the "
        "noise steps 1.3e-03",
    ],
}


@pytest.fixture(scope="session")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A `python3` kernel running this interpreter, whatever kernels the machine has installed."""
    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(kernels / "python3")
    return KernelSpecManager(kernel_dirs=[str(kernels)])


def picture_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code" and PICTURE_TAGS & set(cell.metadata.get("tags", []))
    ]


def printed(notebook: nbformat.NotebookNode) -> str:
    """Everything the code cells printed or returned as text."""
    return "\n".join(
        output.get("text", "") + output.get("data", {}).get("text/plain", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def missing_figures(path: Path, notebook: nbformat.NotebookNode) -> list[str]:
    text = printed(notebook)
    return [figure for figure in KEY_FIGURES.get(path.stem, []) if figure not in text]


def has_image(cell: nbformat.NotebookNode) -> bool:
    return any(mime in output.get("data", {}) for output in cell.outputs for mime in IMAGE_TYPES)


def test_the_tour_has_the_five_notebooks():
    assert [path.name for path in NOTEBOOKS] == [
        "01_value_and_chain_rule.ipynb",
        "02_drawing_graphs.ipynb",
        "03_training_moons.ipynb",
        "04_gradient_descent_variants.ipynb",
        "05_higher_order_and_jit.ipynb",
        "06_batchnorm_and_dropout.ipynb",
        "07_backprop_through_time.ipynb",
        "08_vanishing_gradients_and_dead_relus.ipynb",
        "09_backward_stepper.ipynb",
        "10_playground.ipynb",
        "11_optimizer_paths.ipynb",
        "12_digits.ipynb",
        "13_forward_mode_and_exercises.ipynb",
        "14_losses.ipynb",
        "15_generalisation.ipynb",
        "16_gpt_from_scalars.ipynb",
    ]


def test_the_kernel_runs_this_interpreter(kernel_specs: KernelSpecManager):
    assert kernel_specs.get_kernel_spec("python3").argv[0] == sys.executable


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_saved_with_its_outputs(path: Path):
    """A reader on GitHub sees the results without running anything."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count is not None for cell in code)
    assert not [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert picture_cells(notebook), "each notebook shows at least one graph or plot"
    assert all(has_image(cell) for cell in picture_cells(notebook))
    assert not missing_figures(path, notebook), "figures the text quotes, not in the outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom_and_draws_its_pictures(
    path: Path, tmp_path: Path, kernel_specs: KernelSpecManager
):
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    notebook = nbformat.read(copy, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []  # every picture checked below must come from this run

    kernel = KernelManager(kernel_name="python3", kernel_spec_manager=kernel_specs)
    client = NotebookClient(
        notebook, km=kernel, timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

    for cell in picture_cells(notebook):
        assert has_image(cell), f"no image from the cell:\n{cell.source}"
    assert not missing_figures(path, notebook), "figures the text quotes, not printed by this run"
