import sys

from .build import build_report

if __name__ == "__main__":
    build_report(*sys.argv[1:3])
