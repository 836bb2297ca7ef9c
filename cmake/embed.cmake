# cmake -DIN=file -DOUT=file.cc -DNAME=FunctionName -DNS=namespace -P embed.cmake
# Writes a .cc defining `std::string_view NS::NAME()` returning the file's bytes.
file(READ "${IN}" content HEX)
string(LENGTH "${content}" hexlen)
math(EXPR n "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${content}")
file(WRITE "${OUT}" "// Generated from ${IN}; do not edit.\n#include <string_view>\nnamespace ${NS} {\nnamespace { const char kData[] = {${bytes} 0}; }\nstd::string_view ${NAME}() { return std::string_view(kData, ${n}); }\n}\n")
