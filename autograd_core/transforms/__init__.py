"""Functional transforms over the engine: grad, value_and_grad, hessian, jvp, jacobians, gradcheck
and the grader of hand-written backward passes."""
