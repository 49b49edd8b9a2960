from deepdetect.cli.export import main

main()
