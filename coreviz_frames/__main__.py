"""``python -m coreviz_frames`` runs the ``coreviz-frames`` command line."""

from coreviz_frames.cli.main import main

if __name__ == "__main__":
    main(prog_name="coreviz-frames")
