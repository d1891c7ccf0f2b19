"""Stand-in for pip's get-pip.py bootstrap that ansible-test downloads from a host these machines cannot reach.

ansible-test runs it as `python get_pip.py [pip options] pip==X [--no-setuptools] [--no-wheel]` in an empty
virtualenv and documents saving the script to ~/.ansible/test/cache/ by hand. This one bootstraps pip with the
interpreter's own ensurepip, then installs the requested packages from the package index.
"""

import subprocess
import sys


def main():
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "pip", "install", *args], check=True)


if __name__ == "__main__":
    main()
