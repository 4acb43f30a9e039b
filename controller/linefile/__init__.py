"""Reading a line file: YAML to the validated line model, and the checks across its sections."""
