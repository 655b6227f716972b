"""Running Spaces: the hardware catalogue, the runner interface and the local sandboxed runner.

Nothing here imports the hub's domain (an import-linter contract): ``hub/spaces.py`` decides who may
do what and hands this package plain values (a folder of files, an environment, limits).
"""
