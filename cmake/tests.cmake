# tests registered by cmake/tests.cmake
