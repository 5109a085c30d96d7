"""The peers fastmlp is measured against: SGD written as a Python user would.

NumpyPeer and TorchPeer train an epoch of the same network as fastmlp's
epoch benchmarks (sigmoid or ReLU layers; the quadratic cost with the ½ on
an output layer of the same activation, or a softmax output with the
log-likelihood cost; plain SGD) from the same starting parameters, visiting
the examples in the same order, so the results can be compared: not bit for
bit (BLAS sums in its own order), but closely. TorchRecipe trains the time-to-accuracy recipe
of benchmarks/report.py in PyTorch.
"""

from __future__ import annotations

import numpy as np


def _sigmoid(z):
    with np.errstate(over="ignore"):  # exp(-z) = inf for very negative z gives 0, as it should
        return 1.0 / (1.0 + np.exp(-z))


class NumpyPeer:
    """Idiomatic vectorised NumPy: ``@`` over the mini-batch, as in most tutorials."""

    name = "numpy"

    def __init__(self, weights, biases, activation, learning_rate, batch_size, dtype, threads, cost="quadratic"):
        self.W = [np.array(w, dtype=dtype) for w in weights]
        self.b = [np.array(b, dtype=dtype) for b in biases]
        self.activation, self.lr, self.batch_size, self.dtype = activation, learning_rate, batch_size, np.dtype(dtype)
        self.cost = cost
        self.threads = threads  # NumPy's BLAS threads are set by the caller (threadpoolctl)

    def _act(self, z):
        return _sigmoid(z) if self.activation == "sigmoid" else np.maximum(z, 0)

    def _prime(self, a):
        return a * (1 - a) if self.activation == "sigmoid" else (a > 0).astype(a.dtype)

    def epoch(self, X, Y, perm):
        for start in range(0, len(X), self.batch_size):
            idx = perm[start : start + self.batch_size]
            activations = [X[idx]]
            for l, (W, b) in enumerate(zip(self.W, self.b)):
                z = activations[-1] @ W.T + b
                if self.cost == "log_likelihood" and l == len(self.W) - 1:
                    e = np.exp(z - z.max(axis=1, keepdims=True))
                    activations.append(e / e.sum(axis=1, keepdims=True))
                else:
                    activations.append(self._act(z))
            delta = activations[-1] - Y[idx]
            if self.cost == "quadratic":
                delta *= self._prime(activations[-1])
            step = self.dtype.type(self.lr / len(idx))
            for l in range(len(self.W) - 1, -1, -1):
                grad_W, grad_b = delta.T @ activations[l], delta.sum(axis=0)
                if l:
                    delta = (delta @ self.W[l]) * self._prime(activations[l])
                self.W[l] -= step * grad_W
                self.b[l] -= step * grad_b

    @property
    def weights(self):
        return self.W

    @property
    def biases(self):
        return self.b


class TorchPeer:
    """PyTorch on the CPU: ``nn.Linear`` layers and ``torch.optim.SGD``, in eager mode."""

    name = "torch"

    def __init__(self, weights, biases, activation, learning_rate, batch_size, dtype, threads, cost="quadratic"):
        import torch

        self.torch = torch
        torch.set_num_threads(threads)
        self.torch_dtype = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
        layers = []
        for W, b in zip(weights, biases):
            linear = torch.nn.Linear(W.shape[1], W.shape[0], dtype=self.torch_dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.array(W, dtype=dtype)))
                linear.bias.copy_(torch.from_numpy(np.array(b, dtype=dtype)))
            layers += [linear, torch.nn.Sigmoid() if activation == "sigmoid" else torch.nn.ReLU()]
        if cost == "log_likelihood":
            layers.pop()  # the loss takes the softmax of the weighted inputs
        self.model = torch.nn.Sequential(*layers)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=learning_rate)
        self.batch_size, self.cost = batch_size, cost

    def epoch(self, X, Y, perm):
        torch = self.torch
        X, Y = torch.from_numpy(X), torch.from_numpy(Y)  # shares memory: no copy
        perm = torch.from_numpy(perm)
        for start in range(0, len(X), self.batch_size):
            idx = perm[start : start + self.batch_size]
            out = self.model(X[idx])
            if self.cost == "log_likelihood":
                loss = torch.nn.functional.cross_entropy(out, Y[idx])  # Y: one-hot probabilities
            else:
                loss = 0.5 * ((out - Y[idx]) ** 2).sum(dim=1).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()

    @property
    def weights(self):
        return [m.weight.detach().numpy() for m in self.model if hasattr(m, "weight")]

    @property
    def biases(self):
        return [m.bias.detach().numpy() for m in self.model if hasattr(m, "bias")]


class TorchRecipe:
    """PyTorch on the CPU, for the time-to-accuracy recipe: hidden ``activation`` layers, a softmax
    output with the log-likelihood (``nn.CrossEntropyLoss`` on the weighted inputs), SGD with
    momentum and a step decay of the learning rate, as fastmlp trains them."""

    def __init__(self, weights, biases, activation, learning_rate, momentum, every, factor,
                 batch_size, dtype, threads):
        import torch

        self.torch = torch
        torch.set_num_threads(threads)
        torch_dtype = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
        hidden = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[activation]
        layers = []
        for W, b in zip(weights, biases):
            linear = torch.nn.Linear(W.shape[1], W.shape[0], dtype=torch_dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.array(W, dtype=dtype)))
                linear.bias.copy_(torch.from_numpy(np.array(b, dtype=dtype)))
            layers += [linear, hidden()]
        self.model = torch.nn.Sequential(*layers[:-1])  # the loss applies the softmax
        # fastmlp's v ← μv − ηg, w ← w + v is PyTorch's v ← μv + g, w ← w − ηv while η stays
        # constant; when η decays, PyTorch's new η also scales the velocity gathered before.
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=learning_rate, momentum=momentum)
        self.schedule = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=every, gamma=factor)
        self.loss = torch.nn.CrossEntropyLoss()
        self.batch_size = batch_size

    def epoch(self, X, labels, perm):
        torch = self.torch
        X, labels, perm = torch.from_numpy(X), torch.from_numpy(labels.astype(np.int64)), torch.from_numpy(perm)
        for start in range(0, len(X), self.batch_size):
            idx = perm[start : start + self.batch_size]
            loss = self.loss(self.model(X[idx]), labels[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.schedule.step()

    def accuracy(self, X, labels):
        with self.torch.no_grad():
            predicted = self.model(self.torch.from_numpy(X)).argmax(dim=1).numpy()
        return float(np.mean(predicted == labels))


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True
