from deepdetect.cli.extract import main

main()
