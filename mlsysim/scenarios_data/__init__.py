"""The scenarios shipped with the package (``mlsys.yaml`` files), named by
:data:`mlsysim.evaluation.Scenarios`."""
