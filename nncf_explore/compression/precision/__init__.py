"""Mixed precision: HAWQ's Hessian traces, the exact budget search, and bit-width assignment."""
