from runyard.builtin import search

search.main()
