from lstm_inspect.cli import main

main(prog_name="lstm-inspect")
