from deepdetect.cli.evaluate import main

main()
