// std::expected, or a small stand-in where the standard library lacks it: libstdc++ 12 offers
// <expected> only to compilers with C++20 concepts in full, which clang 14 (the fuzzing build)
// is not. The stand-in has the part of the interface this tree uses: construction from a value
// or std::unexpected, has_value/operator bool, operator* and ->, value, value_or, error, emplace.
// Builds whose library lacks std::expected get this header before every source (the root
// CMakeLists.txt checks); elsewhere it only includes <expected>.
#pragma once

#include <version>
#if __has_include(<expected>)
#include <expected>
#endif

#if !defined(__cpp_lib_expected)
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

// Declared in std so the code reads the same with either: it is only ever compiled where the
// library has no std::expected of its own.
namespace std {

template <class E>
class unexpected {
 public:
  template <class G = E, enable_if_t<!is_same_v<remove_cvref_t<G>, unexpected> && !is_same_v<remove_cvref_t<G>, in_place_t> &&
                                         is_constructible_v<E, G>,
                                     int> = 0>
  constexpr explicit unexpected(G&& e) : error_(std::forward<G>(e)) {}
  constexpr const E& error() const& noexcept { return error_; }
  constexpr E& error() & noexcept { return error_; }
  constexpr E&& error() && noexcept { return std::move(error_); }

 private:
  E error_;
};
template <class E>
unexpected(E) -> unexpected<E>;

template <class E>
class bad_expected_access : public exception {
 public:
  explicit bad_expected_access(E e) : error_(std::move(e)) {}
  const char* what() const noexcept override { return "bad access to std::expected without expected value"; }
  const E& error() const& noexcept { return error_; }

 private:
  E error_;
};

struct unexpect_t {
  explicit unexpect_t() = default;
};
inline constexpr unexpect_t unexpect{};

namespace expected_detail {
template <class T>
inline constexpr bool is_unexpected = false;
template <class E>
inline constexpr bool is_unexpected<unexpected<E>> = true;
}  // namespace expected_detail

template <class T, class E>
class expected {
 public:
  using value_type = T;
  using error_type = E;
  using unexpected_type = unexpected<E>;

  constexpr expected() : v_(in_place_index<0>) {}
  template <class U = T, enable_if_t<!is_same_v<remove_cvref_t<U>, expected> && !is_same_v<remove_cvref_t<U>, in_place_t> &&
                                         !expected_detail::is_unexpected<remove_cvref_t<U>> && is_constructible_v<T, U>,
                                     int> = 0>
  constexpr explicit(!is_convertible_v<U, T>) expected(U&& v) : v_(in_place_index<0>, std::forward<U>(v)) {}
  template <class G>
  constexpr expected(const unexpected<G>& u) : v_(in_place_index<1>, u.error()) {}
  template <class G>
  constexpr expected(unexpected<G>&& u) : v_(in_place_index<1>, std::move(u).error()) {}
  template <class... A>
  constexpr explicit expected(in_place_t, A&&... a) : v_(in_place_index<0>, std::forward<A>(a)...) {}
  template <class... A>
  constexpr explicit expected(unexpect_t, A&&... a) : v_(in_place_index<1>, std::forward<A>(a)...) {}

  constexpr bool has_value() const noexcept { return v_.index() == 0; }
  constexpr explicit operator bool() const noexcept { return has_value(); }

  constexpr const T& operator*() const& noexcept { return *get_if<0>(&v_); }
  constexpr T& operator*() & noexcept { return *get_if<0>(&v_); }
  constexpr T&& operator*() && noexcept { return std::move(*get_if<0>(&v_)); }
  constexpr const T* operator->() const noexcept { return get_if<0>(&v_); }
  constexpr T* operator->() noexcept { return get_if<0>(&v_); }

  constexpr const T& value() const& { return check(), **this; }
  constexpr T& value() & { return check(), **this; }
  constexpr T&& value() && { return check(), std::move(**this); }
  template <class U>
  constexpr T value_or(U&& fallback) const& {
    return has_value() ? **this : static_cast<T>(std::forward<U>(fallback));
  }
  template <class U>
  constexpr T value_or(U&& fallback) && {
    return has_value() ? std::move(**this) : static_cast<T>(std::forward<U>(fallback));
  }

  constexpr const E& error() const& noexcept { return *get_if<1>(&v_); }
  constexpr E& error() & noexcept { return *get_if<1>(&v_); }
  constexpr E&& error() && noexcept { return std::move(*get_if<1>(&v_)); }

  template <class... A>
  constexpr T& emplace(A&&... a) {
    return v_.template emplace<0>(std::forward<A>(a)...);
  }

 private:
  constexpr void check() const {
    if (!has_value()) throw bad_expected_access<E>(error());
  }
  variant<T, E> v_;
};

template <class E>
class expected<void, E> {
 public:
  using value_type = void;
  using error_type = E;
  using unexpected_type = unexpected<E>;

  constexpr expected() noexcept = default;
  template <class G>
  constexpr expected(const unexpected<G>& u) : error_(in_place, u.error()) {}
  template <class G>
  constexpr expected(unexpected<G>&& u) : error_(in_place, std::move(u).error()) {}
  constexpr explicit expected(in_place_t) noexcept {}
  template <class... A>
  constexpr explicit expected(unexpect_t, A&&... a) : error_(in_place, std::forward<A>(a)...) {}

  constexpr bool has_value() const noexcept { return !error_.has_value(); }
  constexpr explicit operator bool() const noexcept { return has_value(); }
  constexpr void operator*() const noexcept {}
  constexpr void value() const {
    if (!has_value()) throw bad_expected_access<E>(*error_);
  }
  constexpr const E& error() const& noexcept { return *error_; }
  constexpr E& error() & noexcept { return *error_; }
  constexpr E&& error() && noexcept { return std::move(*error_); }
  constexpr void emplace() noexcept { error_.reset(); }

 private:
  optional<E> error_;
};

}  // namespace std
#endif
