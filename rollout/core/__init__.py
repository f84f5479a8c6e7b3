"""The pure core: states, actions, the decision engine, operator commands, judges, planning and
sizing. No I/O, no clock, no globals; everything is passed in."""
