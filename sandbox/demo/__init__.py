"""`posgw demo`: the stack it starts, the traffic it drives, the summary it checks."""
