#include "flotilla/support/encoding.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace s = flotilla::support;

TEST_CASE("base64 matches RFC 4648's test vectors both ways", "[support][encoding]") {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    CHECK(s::base64_encode(plain) == encoded);
    CHECK(s::base64_decode(encoded) == plain);
  }
}

TEST_CASE("base64 round-trips binary data and reads URL-safe, unpadded and wrapped text", "[support][encoding]") {
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  CHECK(s::base64_decode(s::base64_encode(binary)) == binary);
  CHECK(s::base64_decode("Zm9v\n") == "foo");
  CHECK(s::base64_decode("Zm9vYg") == "foob");
  CHECK(s::base64_decode("Zm9v\r\nYmFy") == "foobar");
  CHECK(s::base64_encode("\xfb\xff") == "+/8=");
  CHECK(s::base64_decode("-_8") == "\xfb\xff");
}

TEST_CASE("base64_decode refuses text outside the alphabet", "[support][encoding]") {
  CHECK_FALSE(s::base64_decode("Zm9v!"));
  CHECK_FALSE(s::base64_decode("Z"));
  CHECK_FALSE(s::base64_decode("\xc3\xa9"));
}

TEST_CASE("valid_utf8 accepts well-formed text and refuses the classic malformations", "[support][encoding]") {
  CHECK(s::valid_utf8(""));
  CHECK(s::valid_utf8("plain ascii"));
  CHECK(s::valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\xa2"));
  CHECK_FALSE(s::valid_utf8("\xff"));
  CHECK_FALSE(s::valid_utf8("\xc3"));              // truncated
  CHECK_FALSE(s::valid_utf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(s::valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  CHECK_FALSE(s::valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(s::valid_utf8("ok \x80 no"));        // lone continuation byte
  std::uint32_t cp = 0;
  CHECK(s::utf8_sequence("a\xe2\x82\xac", 1, cp) == 3);
  CHECK(cp == 0x20AC);
  CHECK(s::utf8_sequence("a", 1, cp) == 0);
}

TEST_CASE("stable_hash is 64-bit FNV-1a with the published offset basis", "[support][encoding]") {
  // Reference values of FNV-1a 64 (the empty string hashes to the offset basis itself).
  CHECK(s::fnv1a64("") == 14695981039346656037ULL);
  CHECK(s::stable_hash("") == "cbf29ce484222325");
  CHECK(s::stable_hash("a") == "af63dc4c8601ec8c");
  CHECK(s::stable_hash("foobar") == "85944171f73967e8");
  CHECK(s::stable_hash("foobar") != s::stable_hash("foobaR"));
  CHECK(s::hex64(0x1f) == "000000000000001f");
}

TEST_CASE("legacy_stable_hash gives the values earlier releases stored, which stable_hash does not", "[support][encoding]") {
  // Earlier releases used 1469598103934665603 as the offset basis (a digit short).
  CHECK(s::legacy_stable_hash("") == "14650fb0739d0383");
  CHECK(s::legacy_stable_hash("a") == "44bd8ad473cd9906");
  CHECK(s::legacy_stable_hash("foobar") == "88fad7c0a8ff07f2");
  CHECK(s::legacy_stable_hash("foobar") != s::stable_hash("foobar"));
}

TEST_CASE("sha256_hex matches the FIPS 180-2 examples", "[support][encoding]") {
  CHECK(s::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(s::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("hmac_sha256 matches RFC 4231's test vectors, sha256_bytes and hex_encode agree with sha256_hex", "[support][encoding]") {
  CHECK(s::hex_encode(s::hmac_sha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(s::hex_encode(s::hmac_sha256(std::string(20, '\x0b'), "Hi There")) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // A key longer than the block size is hashed first (RFC 4231 test case 6).
  CHECK(s::hex_encode(s::hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")) ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  CHECK(s::hex_encode(s::sha256_bytes("abc")) == s::sha256_hex("abc"));
  CHECK(s::hex_encode(std::string("\x00\xff\x10", 3)) == "00ff10");
}
